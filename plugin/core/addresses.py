"""Whether a text plainly is one e-mail address, without asking email-validator.

email-validator reads an address as RFC 5321 and the IDNA rules say, which costs about a
hundred microseconds; a ledger of 100,000 clients, or a batch of reminders, asks it for
every address. Most addresses are a dot-atom at a host name, which a regular expression
recognises in a microsecond. Whatever this does not recognise is asked of
email-validator; whatever it recognises, email-validator accepts too (a property test
holds the two together).
"""

from __future__ import annotations

import re

__all__ = ["plainly_an_address"]

# A dot-atom at a host name of letters, digits and single hyphens.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64})*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
)
_SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")


def plainly_an_address(address: str) -> bool:
    """True only for an address email-validator accepts; False says: ask it."""
    local, _, domain = address.rpartition("@")
    return (
        len(address) <= 254
        and len(local) <= 64
        and _PLAIN_ADDRESS.fullmatch(address) is not None
        and domain.rpartition(".")[2].lower() not in _SPECIAL_USE_DOMAINS
        # Punycode and IDNA's rule on hyphens are email-validator's to check.
        and "--" not in domain
    )
