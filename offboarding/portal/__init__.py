"""The approvals portal: where finance approvers and the client's data steward decide,
from the signed link in their email."""
