"""The few exceptions the ledger raises. Messages carry ids, never phone numbers."""


class LedgerError(Exception):
    """Base class for refusals a person can be told about."""


class NotFound(LedgerError):
    """A bank, member or account that does not exist."""


class InvalidHours(LedgerError):
    """Hours that are not positive, not in quarter-hour steps, or over the per-exchange maximum."""


class LimitReached(LedgerError):
    """A transfer that would take an account below the bank's limit."""


class SameAccount(LedgerError):
    """A transfer from an account to itself."""


class OwnHours(LedgerError):
    """A broker acting on hours they give or receive: another broker must."""
