"""Password hashing (argon2), random tokens and keyed hashes.

Tokens (API, device, web session) are random 256-bit strings; only their SHA-256 is stored,
which is safe for high-entropy secrets and lets any app process look them up.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn
from zxcvbn.matching import add_frequency_lists

from app.errors import Invalid

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
#: A few passwords refused outright, whatever their length.
COMMON_PASSWORDS = {"password", "passw0rd", "1234567890", "0123456789", "qwertyuiop", "azertyuiop", "motdepasse"}
#: zxcvbn score (0-4) a password must reach: 3 = "safely unguessable: moderate protection from an
#: offline slow-hash scenario" (about 10^8 guesses or more).
MIN_PASSWORD_SCORE = 3
#: zxcvbn is quadratic in the length; longer passwords are scored on this many first characters.
ZXCVBN_MAX_LENGTH = 72
#: Words every guesser here tries first, which zxcvbn's English lists lack: the product, French
#: and Lingala/Swahili everyday words, and the places and minerals of the programme.
LOCAL_WORDS = (
    "asmfield", "motdepasse", "soleil", "bonjour", "bonsoir", "salut", "merci", "amour", "jetaime", "chouchou",
    "doudou", "bebe", "cheri", "cherie", "princesse", "papa", "maman", "famille", "enfant", "enfants", "ami", "amie",
    "copain", "copine", "coeur", "bisou", "dieu", "jesus", "marie", "seigneur", "eglise", "priere", "gloire",
    "liberte", "france", "paris", "belgique", "bruxelles", "afrique", "football", "vita", "mazembe", "leopards",
    "azerty", "azertyuiop", "qwertz", "secret", "secrete", "bienvenue", "nouveau", "nouvelle", "accueil", "test",
    "utilisateur", "admin", "administrateur", "travail", "bureau", "ecole", "maison", "mine", "mines", "mineur",
    "creuseur", "creuseurs", "carriere", "chantier", "cooperative", "kolwezi", "lubumbashi", "likasi", "kambove",
    "kipushi", "fungurume", "kinshasa", "katanga", "lualaba", "kasai", "kivu", "goma", "bukavu", "kisangani",
    "congo", "rdc", "drc", "zaire", "cobalt", "cuivre", "copper", "coltan", "etain", "diamant", "diamond",
    "mbote", "malamu", "mwana", "bana", "mama", "tata", "sango", "nzambe", "jambo", "habari", "asante", "rafiki",
    "trafigura", "pact", "bonpasteur", "pasteur", "unicef", "kipaji", "nuru", "katanga", "moniteur", "monitrice", "coordinateur",
    "coordination", "terrain", "visite", "enquete", "projet", "programme", "janvier", "fevrier", "mars", "avril",
    "mai", "juin", "juillet", "aout", "septembre", "octobre", "novembre", "decembre", "lundi", "mardi",
    "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "iloveyou", "jetadore", "chocolat", "bonheur",
    "nouveau", "nouvelle", "bienvenue", "secret", "amour", "doudou", "loulou", "chouchou", "princesse", "liberte",
    "merci", "salut", "famille", "jesus", "marie", "dieu", "paris", "france", "belgique", "bruxelles",
)
#: zxcvbn 4.5 recognises years only up to 2019 and scores "2026" as random digits: years as a dictionary.
YEARS = tuple(str(year) for year in range(2050, 1949, -1))
add_frequency_lists({"asmfield_local": LOCAL_WORDS, "asmfield_years": YEARS})
#: zxcvbn keeps the user inputs of a call in a module-level dictionary: one estimate at a time.
_zxcvbn_lock = threading.Lock()


def password_estimate(password: str, user_inputs: Iterable[str] = ()) -> dict:
    """zxcvbn's estimate (score, feedback) with the local words and ``user_inputs`` as dictionaries."""
    inputs = ["asmfield", *(part for value in user_inputs if value for part in _words(value))]
    with _zxcvbn_lock:
        return zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=inputs, max_length=ZXCVBN_MAX_LENGTH)


def _words(value: str) -> list[str]:
    """A user input, its parts and their concatenation ("PACT RDC" -> that, "pact", "rdc", "pactrdc")."""
    parts = [p for p in "".join(c if c.isalnum() else " " for c in value).split() if len(p) >= 3]
    return [value, *parts, "".join(c for c in value if c.isalnum())]


def check_password_strength(password: str | None, username: str = "", user_inputs: Iterable[str] = ()) -> str:
    """Return the password if acceptable; raise ``Invalid`` naming the problem otherwise.

    Beyond length, a password must reach zxcvbn score ``MIN_PASSWORD_SCORE`` with the username,
    ``user_inputs`` (organisation, full name) and ``LOCAL_WORDS`` counted as known words; the
    refusal carries zxcvbn's feedback.
    """
    if not password or not password.strip():
        raise Invalid("password is empty", code="user.password_empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"password must have at least {MIN_PASSWORD_LENGTH} characters", code="user.password_weak")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(f"password must have at most {MAX_PASSWORD_LENGTH} characters", code="user.password_too_long")
    lowered = password.lower()
    # The username adds nothing an attacker does not know: the rest must be long enough alone.
    rest = lowered.replace(username.lower(), "") if username else lowered
    if lowered in COMMON_PASSWORDS or len(rest) < MIN_PASSWORD_LENGTH or len(set(password)) < 4:
        raise Invalid("password is too easy to guess (too common, too repetitive, or mostly the username)",
                      code="user.password_weak")
    estimate = password_estimate(password, [username, *user_inputs])
    if estimate["score"] < MIN_PASSWORD_SCORE:
        feedback = estimate["feedback"]
        advice = " ".join(x for x in [feedback.get("warning") or "", *feedback.get("suggestions", [])] if x)
        raise Invalid(
            f"password is too easy to guess (strength {estimate['score']} of 4, at least {MIN_PASSWORD_SCORE} needed)"
            + (f": {advice}" if advice else ""),
            code="user.password_weak",
            details={"score": estimate["score"], "min_score": MIN_PASSWORD_SCORE,
                     "warning": feedback.get("warning") or "", "suggestions": feedback.get("suggestions", [])},
        )
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_hash(secret: str, value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of ``value`` under the server secret, separated by ``purpose``."""
    key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def digest_ha1(username: str, realm: str, password: str) -> str:
    """HTTP Digest HA1 = MD5(username:realm:password), kept so OpenRosa Digest clients can log in."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()  # noqa: S324 (protocol-mandated)
