"""Access codes, tokens and staff passwords."""

from __future__ import annotations

import time

import pytest

from engine.exceptions import AuthError
from engine.server.auth import (
    CODE_ALPHABET,
    Claims,
    TokenIssuer,
    hash_code,
    hash_password,
    new_access_code,
    password_matches,
)


def test_access_codes_are_readable_and_typed_forgivingly() -> None:
    code = new_access_code()
    raw = code.replace("-", "")
    assert len(raw) == 10 and set(raw) <= set(CODE_ALPHABET)
    assert hash_code(code) == hash_code(f"  {code.lower()} ") == hash_code(raw)
    assert hash_code(code) != hash_code(new_access_code())


def test_a_token_carries_its_subject_exam_and_role() -> None:
    issuer = TokenIssuer(b"k" * 32, ttl_s=60)
    token, expires_at = issuer.issue(subject="c1", exam_id="e", role="candidate", now=time.time())
    claims = issuer.verify(token, role="candidate")
    assert (claims.subject, claims.exam_id, claims.role) == ("c1", "e", "candidate")
    assert claims.expires_at == int(expires_at)
    with pytest.raises(AuthError) as wrong_role:
        issuer.verify(token, role=("proctor", "admin"))
    assert wrong_role.value.code == "wrong_role"


def test_expired_forged_and_garbled_tokens_are_refused() -> None:
    issuer = TokenIssuer(b"k" * 32, ttl_s=60)
    old, _ = issuer.issue(subject="c1", exam_id="e", role="candidate", now=time.time() - 3600)
    with pytest.raises(AuthError) as expired:
        issuer.verify(old, role="candidate")
    assert expired.value.code == "token_expired"
    other = TokenIssuer(b"x" * 32, ttl_s=60)
    forged, _ = other.issue(subject="c1", exam_id="e", role="candidate", now=time.time())
    for bad in (forged, "not-a-token", ""):
        with pytest.raises(AuthError) as refused:
            issuer.verify(bad, role="candidate")
        assert refused.value.code == "bad_token"


def test_a_token_verified_before_still_expires_on_time() -> None:
    issuer = TokenIssuer(b"k" * 32, ttl_s=60)
    expires_at = int(time.time()) + 2  # JWT expiry is whole seconds
    token, _ = issuer.issue(subject="c1", exam_id="e", role="candidate", now=expires_at - 60)
    assert issuer.verify(token, role="candidate").subject == "c1"
    assert issuer.verify(token, role="candidate").subject == "c1", "the second check is cached"
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)
    with pytest.raises(AuthError) as expired:
        issuer.verify(token, role="candidate")
    assert expired.value.code == "token_expired"
    with pytest.raises(AuthError) as again:
        issuer.verify(token, role="candidate")
    assert again.value.code == "token_expired", "and it stays refused once dropped"


class CountingIssuer(TokenIssuer):
    decoded = 0

    def _decode(self, token: str) -> Claims:
        self.decoded += 1
        return super()._decode(token)


def test_a_token_issued_here_is_checked_without_decoding_and_says_the_same() -> None:
    """A start storm verifies every token moments after issuing it: no second decoding."""
    issuer = CountingIssuer(b"k" * 32, ttl_s=60)
    token, _ = issuer.issue(subject="c1", exam_id="e", role="candidate", now=time.time())
    kept = issuer.verify(token, role="candidate")
    assert issuer.decoded == 0
    elsewhere = CountingIssuer(b"k" * 32, ttl_s=60)  # another process with the same secret
    assert elsewhere.verify(token, role="candidate") == kept and elsewhere.decoded == 1


def test_passwords_are_salted_scrypt_hashes() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$")
    assert password_matches("correct horse", first) and password_matches("correct horse", second)
    assert not password_matches("correct horsE", first)
    assert not password_matches("correct horse", "md5$abc")
    assert not password_matches("correct horse", "garbage")


def test_tokens_issued_before_a_new_access_code_are_refused_and_later_ones_are_not() -> None:
    issuer = TokenIssuer(b"k" * 32, ttl_s=600)
    now = time.time() - 10  # every token below was issued in the past
    old, _ = issuer.issue(subject="c1", exam_id="e", role="candidate", now=now)
    other, _ = issuer.issue(subject="c2", exam_id="e", role="candidate", now=now)
    issuer.verify(old, role="candidate")  # verified once: kept, and still checked again
    issuer.replace_before("e", "c1", now + 0.5)
    with pytest.raises(AuthError) as replaced:
        issuer.verify(old, role="candidate")
    assert replaced.value.code == "token_replaced"
    assert issuer.verify(other, role="candidate").subject == "c2", "only that candidate's"
    new, _ = issuer.issue(subject="c1", exam_id="e", role="candidate", now=now + 0.7)
    assert issuer.verify(new, role="candidate").subject == "c1"
    issuer.replace_before("e", "c1", now + 0.2)  # an older replacement never loosens it
    with pytest.raises(AuthError):
        issuer.verify(old, role="candidate")
