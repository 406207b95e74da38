"""Access codes and signed, expiring tokens.

An access code is handed to one candidate for one exam and works once: redeeming it returns a
token (HS256 JWT signed with the data directory's secret) that the candidate's client keeps for
reconnects. Codes are stored only as hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass

import jwt

from engine.exceptions import AuthError

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
"""No 0/O or 1/I: codes are read aloud and typed from paper."""
CODE_LENGTH = 10


def new_access_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def hash_code(code: str) -> str:
    return hashlib.sha256(normalize_code(code).encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class Claims:
    """Who a token speaks for."""

    subject: str
    exam_id: str
    role: str
    expires_at: float
    issued_at: float = 0.0


class TokenIssuer:
    ALGORITHM = "HS256"

    VERIFIED_KEPT = 100_000
    """Tokens whose signature was checked, kept so the next request skips the check."""

    def __init__(self, secret: bytes, ttl_s: float) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self._verified: dict[str, Claims] = {}
        """Every upload and reconnect carries the token; decoding a JWT costs about 60 µs."""
        self._replaced: dict[tuple[str, str], float] = {}
        """(exam, subject) → tokens issued before this instant no longer count: a proctor
        issued the candidate a new access code (a lost or changed device)."""

    def replace_before(self, exam_id: str, subject: str, at: float) -> None:
        """Refuse the subject's tokens issued before `at` from now on."""
        key = (exam_id, subject)
        self._replaced[key] = max(at, self._replaced.get(key, at))

    def issue(self, *, subject: str, exam_id: str, role: str, now: float) -> tuple[str, float]:
        expires_at = now + self.ttl_s
        token = jwt.encode(
            {
                "sub": subject,
                "exam": exam_id,
                "role": role,
                "iat": int(now),
                "at": now,
                "exp": int(expires_at),
            },
            self._secret,
            algorithm=self.ALGORITHM,
        )
        # Genuine by making: its first check (the candidate's hello, moments later) needs no
        # decoding. The claims are what decoding gives (whole-second expiry).
        self._keep_verified(token, Claims(subject, exam_id, role, float(int(expires_at)), now))
        return token, expires_at

    def _keep_verified(self, token: str, claims: Claims) -> None:
        if len(self._verified) >= self.VERIFIED_KEPT:
            self._verified.clear()
        self._verified[token] = claims

    def verify(self, token: str, *, role: str | Collection[str]) -> Claims:
        """The token's claims, if it is genuine, unexpired and of one of these roles."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._decode(token)
            self._keep_verified(token, claims)
        elif time.time() >= claims.expires_at:
            del self._verified[token]
            raise AuthError("the token has expired; sign in again", code="token_expired")
        roles = {role} if isinstance(role, str) else role
        if claims.role not in roles:
            wanted = " or ".join(sorted(roles))
            raise AuthError(f"this is not a token of a {wanted}", code="wrong_role")
        replaced = self._replaced.get((claims.exam_id, claims.subject))
        if replaced is not None and claims.issued_at < replaced:
            raise AuthError(
                "a new access code was issued for you: sign in with it", code="token_replaced"
            )
        return claims

    def _decode(self, token: str) -> Claims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self.ALGORITHM],
                options={"require": ["sub", "exam", "role", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired; sign in again", code="token_expired") from None
        except jwt.InvalidTokenError as error:
            raise AuthError(f"the token is not valid: {error}", code="bad_token") from None
        return Claims(
            str(claims["sub"]),
            str(claims["exam"]),
            str(claims["role"]),
            float(claims["exp"]),
            float(claims.get("at", claims.get("iat", 0))),
        )


SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
"""scrypt's interactive-login cost: about 50 ms and 16 MiB per check."""


def new_password() -> str:
    return secrets.token_urlsafe(12)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt_hex),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest_hex) // 2,
        )
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)
