"""Settings that cannot work are refused when loaded, naming the variable and why."""

from __future__ import annotations

import pytest

from offboarding.config import SettingsError, load_settings
from tests.helpers import refuse_setting


def test_s3_storage_without_a_bucket_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFBOARDING_ENV_FILE", "/nonexistent")
    monkeypatch.setenv("OFFBOARDING_STORAGE", "s3")
    monkeypatch.delenv("OFFBOARDING_S3_BUCKET", raising=False)
    with pytest.raises(SettingsError, match=r"OFFBOARDING_S3_BUCKET .* is required when "
                                            r"OFFBOARDING_STORAGE=s3"):
        load_settings()
    monkeypatch.setenv("OFFBOARDING_S3_BUCKET", "offboarding")
    assert load_settings().s3_bucket == "offboarding"



@pytest.mark.parametrize("value", ["0", "-1", "61", "soon"])
def test_a_sticky_queue_timeout_out_of_range_is_refused_by_name(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    refuse_setting(monkeypatch, "OFFBOARDING_STICKY_QUEUE_TIMEOUT_SECONDS", value)
    monkeypatch.setenv("OFFBOARDING_STICKY_QUEUE_TIMEOUT_SECONDS", "2.5")
    assert load_settings().sticky_queue_timeout_seconds == 2.5
