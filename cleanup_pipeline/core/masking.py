"""Masking of email addresses for everything an operator sees (UI, logs, reports)."""

import re

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Keep the first character of the local part and the domain: `jane@example.com` -> `j***@...`.
_LOCAL_PART = r"^([^@])[^@]*"


def mask_email(address: str) -> str:
    """`jane@example.com` -> `j***@example.com`: only the first letter of the local part."""
    local, at, domain = address.partition("@")
    if not local:
        return address
    return f"{local[:1]}***{at}{domain}"


def mask_emails(addresses: pd.Series) -> pd.Series:
    """Vectorised `mask_email`; missing values stay missing."""
    values = pa.array(addresses.astype("string[pyarrow]").array)
    masked = pc.replace_substring_regex(values, _LOCAL_PART, r"\1***")
    return pd.Series(pd.arrays.ArrowStringArray(masked), index=addresses.index).astype(
        "string[pyarrow]"
    )


_ADDRESS_IN_TEXT = re.compile(r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]*@")


def scrub_emails(text: str) -> str:
    """Mask every address inside free text (error messages, log lines) before it is shown."""
    return _ADDRESS_IN_TEXT.sub(r"\1***@", text)
