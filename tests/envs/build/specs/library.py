"""A small lending library: members borrow and return books."""

from enum import Enum
from typing import Literal

state = {
    "books": {
        "B1": {"title": "Dune", "author": "Frank Herbert", "genre": "scifi", "copies": 2},
        "B2": {"title": "Emma", "author": "Jane Austen", "genre": "classic", "copies": 1},
        "B3": {"title": "Neuromancer", "author": "William Gibson", "genre": "scifi", "copies": 0},
    },
    "members": {"M1": {"name": "Alice Martin"}, "M2": {"name": "Bob Chen"}},
    "loans": [],
}


class Format(Enum):
    PRINT = "print"
    AUDIO = "audio"


# --- Catalogue ---


def find_books(genre: Literal["scifi", "classic", "poetry"], available_only: bool = False) -> list[str]:
    """Lists the ids of the books of a genre.

    Args:
        genre: The genre to list, e.g. scifi or classic.
        available_only: Only books with a copy on the shelf.

    Returns:
        The matching book ids, sorted.
    """
    return sorted(
        book_id
        for book_id, book in state["books"].items()
        if book["genre"] == genre and (book["copies"] > 0 or not available_only)
    )


def book_details(book_id: str) -> dict[str, object]:
    """Gets the title, author and free copies of a book.

    Args:
        book_id: The book's id.
    """
    if book_id not in state["books"]:
        raise ValueError(f"no book with id {book_id!r}")
    return dict(state["books"][book_id])


# --- Loans ---


def borrow_book(member_id: str, book_id: str, format: Format = Format.PRINT, weeks: int | None = None) -> str:
    """Lends a book to a member.

    Args:
        member_id: The member's id.
        book_id: The book's id.
        format: Print or audio edition.
        weeks: Loan length in weeks (default 3).
    """
    book = state["books"].get(book_id)
    if book is None or member_id not in state["members"]:
        raise ValueError("unknown member or book")
    if book["copies"] < 1:
        raise ValueError(f"{book['title']} has no free copy")
    book["copies"] -= 1
    loans = state["loans"]
    loans.append({"member": member_id, "book": book_id, "format": format.value, "weeks": weeks or 3})
    return f"loan {len(loans)}"


def _private_helper(x: int) -> int:
    return x
