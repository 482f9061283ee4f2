"""Hours as members write them and as the bank shows them. Stored as whole minutes."""

from __future__ import annotations

from ledger.errors import InvalidHours

MINUTES_PER_STEP = 15


def format_hours(minutes: int) -> str:
    """``-90`` → ``-1.5``; ``15`` → ``0.25``; ``120`` → ``2``."""
    sign = "-" if minutes < 0 else ""
    whole, rest = divmod(abs(minutes), 60)
    if rest == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole + rest / 60:.2f}".rstrip("0")


def parse_hours(text: str) -> int:
    """``"1.5"``, ``"1,5"``, ``"1h30"``, ``"90m"``, ``"½"`` → minutes, in quarter-hour steps."""
    # Digits of any script are read by float(); "٫" is the Arabic decimal point.
    raw = text.strip().lower().replace(",", ".").replace("\u066b", ".").replace("½", ".5")
    raw = raw.replace("¼", ".25")
    raw = raw.replace("¾", ".75").removesuffix("hours").removesuffix("hrs").removesuffix("hr")
    raw = raw.removesuffix("h").strip()
    try:
        if raw.endswith(("mins", "min", "m")):
            minutes = float(raw.rstrip("mins").strip())
        elif "h" in raw:
            hours, _, mins = raw.partition("h")
            minutes = float(hours or 0) * 60 + float(mins or 0)
        else:
            minutes = float(raw) * 60
    except ValueError:
        raise InvalidHours(f"not a number of hours: {text!r}") from None
    if minutes != minutes or minutes <= 0:  # NaN or not positive
        raise InvalidHours("hours must be more than 0")
    if minutes % MINUTES_PER_STEP:
        raise InvalidHours("hours must be in quarter-hour steps")
    return int(minutes)
