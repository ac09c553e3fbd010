"""Block distribution of work units over ranks or groups."""

from __future__ import annotations


def block_range(n_items: int, n_parts: int, part: int) -> range:
    """Contiguous, balanced block of ``range(n_items)`` owned by ``part`` of ``n_parts``.

    The first ``n_items % n_parts`` parts get one item more. Parts may be empty when
    ``n_parts > n_items``.
    """
    if n_parts < 1 or not 0 <= part < n_parts:
        raise ValueError(f"part {part} of {n_parts}")
    base, extra = divmod(n_items, n_parts)
    start = part * base + min(part, extra)
    return range(start, start + base + (1 if part < extra else 0))


def owner_of(item: int, n_items: int, n_parts: int) -> int:
    """Which part owns ``item`` under :func:`block_range`."""
    base, extra = divmod(n_items, n_parts)
    big = extra * (base + 1)
    if item < big:
        return item // (base + 1)
    return extra + (item - big) // base
