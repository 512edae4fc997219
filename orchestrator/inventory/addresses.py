"""What may be dialled: a DNS host name, an IPv4 address or an IPv6 address, and nothing else.

An address reaches ``~/.ssh/config`` lookups (whose ``Match exec`` commands would get it through
``%h``, the hole OpenSSH closed in 9.6, CVE-2023-51385), sockets and WinRM URLs, so quotes, ``$``,
``/``, ``%``, spaces and a leading ``-`` are refused rather than escaped. IPv6 zone ids
(``fe80::1%eth0``) are refused too: ``%`` means something else in an ssh config and in a URL.
Internationalised names are written in their ASCII (``xn--``) form.
"""

from __future__ import annotations

import ipaddress
import re

# Labels of letters, digits, hyphens and underscores (underscores occur in real internal names),
# none starting with a hyphen; one trailing dot for a fully qualified name.
_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
MAX_NAME = 253

ADDRESS_HINT = "use a DNS name (letters, digits, - _ .) or an IP address"


def is_address(text: str) -> bool:
    """True for a host name, an IPv4 address or an IPv6 address without a zone id."""
    if len(text) <= MAX_NAME and _HOST_NAME.fullmatch(text):
        return True
    if "%" in text or ":" not in text:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def address_problem(text: str) -> str | None:
    """Why ``text`` cannot be dialled, or None when it can."""
    if is_address(text):
        return None
    if "%" in text and is_address(text.partition("%")[0]):
        return "is not a host name or IP address kremove accepts (no IPv6 zone ids)"
    return f"is not a host name or IP address; {ADDRESS_HINT}"
