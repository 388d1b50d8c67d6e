"""Finding in Xero what a record may already be: the contact directory, documents by number, and whether a
found document is this integration's own. Reads only; push decides what to do with what is found.

- Names are compared as a person reads them: Unicode NFC, case-folded, spaces collapsed, so "Café" typed
  composed or decomposed, in capitals or with stray spaces is one name.
- The contact directory is read page by page until Xero's `pagination` says there is no more, whatever page
  size Xero actually serves (the spec only says "up to 100" by default; `pageSize` is honoured up to 1,000).
- Look-ups keep every URL under ~1,900 characters: Xero answers 404 to longer ones (notes §2.7, around 2,091).
  Values are escaped, never stripped: a quote inside a `where` string is written `\\"` (the backslash escape of
  .NET's Dynamic LINQ, which Xero's `where` follows); a number with a comma cannot go in the comma-separated
  `InvoiceNumbers` list and is looked up with `where` instead.
- A document is "ours" when this integration wrote it (its id is in `xero_sync.our_documents`, kept across a
  reset) or, for invoices, Xero lists it under `createdByMyApp`."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from include.omono_xero_sync import settings
from include.omono_xero_sync.entities import Entity

URL_BUDGET = 1_900          # characters of query string per look-up (Xero: 404 past about 2,091 for the URL)
MAX_PER_LOOKUP = 50         # one write batch of numbers per look-up
PAGE_SIZE = 1_000           # the largest page Xero serves (pageSize max 1000, notes §4.3)


def name_key(name: str | None) -> str:
    """How a person compares two names: Unicode compatibility forms folded (NFKC: full-width ＡＣＭＥ is ACME),
    case-folded (ß is ss; a capital dotted İ is an i), inner spaces collapsed, outer spaces dropped."""
    folded = unicodedata.normalize("NFKC", name or "").casefold()
    folded = unicodedata.normalize("NFC", folded.replace("i\u0307", "i"))
    return " ".join(folded.split())


def enum(value: Any) -> Any:
    return getattr(value, "value", value)


def chunks_within(values: list[str], encoded: Callable[[list[str]], str], budget: int = URL_BUDGET,
                  most: int = MAX_PER_LOOKUP) -> Iterator[list[str]]:
    """Greedy chunks of `values` whose encoded query stays within `budget` characters (and `most` values). A value
    too long to be asked for on its own is left out (`too_long` says which): Xero would answer 404 to the whole."""
    chunk: list[str] = []
    for value in values:
        if too_long(value, encoded, budget):
            continue
        if chunk and (len(chunk) >= most or len(encoded([*chunk, value])) > budget):
            yield chunk
            chunk = []
        chunk.append(value)
    if chunk:
        yield chunk


def too_long(value: str, encoded: Callable[[list[str]], str], budget: int = URL_BUDGET) -> bool:
    return len(encoded([value])) > budget


def number_too_long(entity: Entity, number: str) -> bool:
    """A document number Xero could not be asked about (its URL would pass Xero's limit)."""
    field = "CreditNoteNumber" if entity.is_credit_note else "InvoiceNumber"
    return too_long(number, lambda c: quote_plus(any_equal(field, c)))


def where_string(value: str) -> str:
    """A string literal for Xero's `where`: backslashes and quotes escaped, nothing removed."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def any_equal(field: str, values: list[str]) -> str:
    return " OR ".join(f"{field}=={where_string(v)}" for v in values)


def any_guid(field: str, ids: list[str]) -> str:
    return " OR ".join(f'{field}==GUID("{i}")' for i in ids)


def paged(read: Callable[..., Any], collection: str, **params: Any) -> Iterator[Any]:
    """Every item of a paged GET, following `pagination` to the last page (a short page is not the end)."""
    page = 1
    while True:
        reply = read(page=page, **params)
        items = getattr(reply, collection) or []
        yield from items
        pagination = getattr(reply, "pagination", None)
        page_count = getattr(pagination, "page_count", None) if pagination else None
        if not items or (page_count is not None and page >= page_count):
            return
        page += 1


# -- contacts ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FoundContact:
    contact_id: str
    name: str
    status: str
    contact_number: str | None
    account_number: str | None


@dataclass
class ContactDirectory:
    """Every Xero contact, archived ones included, indexed the ways an Omono company can match one."""

    by_number: dict[str, FoundContact]
    by_account: dict[str, FoundContact]
    by_name: dict[str, list[FoundContact]]

    @classmethod
    def read(cls, client: Any) -> ContactDirectory:
        directory = cls({}, {}, {})
        for c in paged(lambda **p: client.read("get_contacts", **p), "contacts", page_size=PAGE_SIZE,
                       include_archived=True, summary_only=True):
            found = FoundContact(str(c.contact_id), c.name or "", enum(c.contact_status) or "ACTIVE",
                                 c.contact_number, c.account_number)
            if c.contact_number:
                directory.by_number[c.contact_number.strip().casefold()] = found
            if c.account_number:
                directory.by_account[name_key(c.account_number)] = found
            if c.name:
                directory.by_name.setdefault(name_key(c.name), []).append(found)
        return directory

    def named(self, name: str) -> list[FoundContact]:
        """Contacts with this name, active ones first."""
        return sorted(self.by_name.get(name_key(name), []), key=lambda c: c.status != "ACTIVE")


# -- documents --------------------------------------------------------------------------------------------------
def number_key(number: str) -> str:
    """A document number as Xero compares them: the spaces around it dropped (Xero strips them) and case ignored
    (`lower`, as Xero's filters do), so the list read here and Xero's own look-up find the same documents."""
    return number.strip().lower()


def documents_numbered(client: Any, entity: Entity, numbers: list[str]) -> list[Any]:
    """Xero's documents of this kind (any type) carrying any of `numbers`, with their lines. Invoice numbers go
    in Xero's comma-separated `InvoiceNumbers` list, except those with a comma, which only `where` can carry."""
    if entity.is_credit_note:
        return _read_chunked(client, "get_credit_notes", numbers, *_where_query("CreditNoteNumber", any_equal))
    plain = [n for n in numbers if "," not in n]
    awkward = [n for n in numbers if "," in n]
    return (_read_chunked(client, "get_invoices", plain, lambda c: "%2C".join(quote(v, safe="") for v in c),
                          lambda c: {"invoice_numbers": c})
            + _read_chunked(client, "get_invoices", awkward, *_where_query("InvoiceNumber", any_equal)))


def documents_by_id(client: Any, entity: Entity, ids: list[str]) -> list[Any]:
    """These documents, in full, by Xero id."""
    if entity.is_credit_note:
        return _read_chunked(client, "get_credit_notes", ids, *_where_query("CreditNoteID", any_guid))
    return _read_chunked(client, "get_invoices", ids, lambda c: "%2C".join(c), lambda c: {"i_ds": c})


def _where_query(field: str, expression: Callable[[str, list[str]], str]
                 ) -> tuple[Callable[[list[str]], str], Callable[[list[str]], dict]]:
    """How a chunk of values is asked for with `where`: its encoded length in the URL, and the query itself."""
    return (lambda chunk: quote_plus(expression(field, chunk)), lambda chunk: {"where": expression(field, chunk)})


def _read_chunked(client: Any, method: str, values: list[str], encoded: Callable[[list[str]], str],
                  query: Callable[[list[str]], dict]) -> list[Any]:
    """Read a document list for `values`, in chunks whose URL stays within what Xero accepts (lines included)."""
    collection = "credit_notes" if method == "get_credit_notes" else "invoices"
    found: list[Any] = []
    for chunk in chunks_within(values, encoded):
        found += paged(lambda **p: client.read(method, **p), collection, unitdp=4, **query(chunk))
    return found


def created_by_this_app(client: Any, entity: Entity, ids: list[str]) -> set[str]:
    """Which of these invoice ids Xero lists as created by this app (Xero offers it for invoices only)."""
    if entity.is_credit_note or not ids:
        return set()
    mine: set[str] = set()
    for chunk in chunks_within(ids, lambda c: "%2C".join(c)):
        mine |= {str(d.invoice_id) for d in client.read("get_invoices", i_ds=chunk, created_by_my_app=True,
                                                        summary_only=True).invoices or []}
    return mine


class DocumentFinder:
    """How one push looks documents up by number, chosen by what Xero holds: when reading Xero's whole list of
    documents of this type (pages of 1,000, summary fields) costs fewer calls than asking for the numbers 50 at a
    time, the list is read once and searched here; hits are then read in full (with their lines) by id. Of the list
    only each number's ids are kept (about 250 bytes a document, where the SDK's objects took 4.5 to 7 KB): a push
    into an organisation holding a million documents must not hold them all. Costs one call to count what Xero
    holds, made only when there is more than one look-up's worth of numbers. Looking again after a lost answer
    (`fresh`) always asks Xero by number: the list may predate the write."""

    def __init__(self, client: Any, entity: Entity, expected_numbers: int) -> None:
        self.client, self.entity, self.expected = client, entity, expected_numbers
        self._directory: dict[str, tuple[str, ...]] | None = None       # number_key -> Xero ids
        self._decided = False

    def find(self, numbers: list[str], fresh: bool = False) -> list[Any]:
        if fresh or not self._use_directory():
            return documents_numbered(self.client, self.entity, numbers)
        assert self._directory is not None
        hits = sorted({i for n in numbers for i in self._directory.get(number_key(n), ())})
        return documents_by_id(self.client, self.entity, hits) if hits else []

    def remember(self, written: list[tuple[str, str]]) -> None:
        """(number, id) of documents this push has just written: the list was read before them, and a record of a
        later group with one of their numbers must find them there, as Xero's own look-up would."""
        if self._directory is None:
            return
        for number, doc_id in written:
            ids = self._directory.get(number_key(number), ())
            if doc_id not in ids:
                self._directory[number_key(number)] = (*ids, doc_id)

    def _use_directory(self) -> bool:
        if not self._decided:
            self._decided = True
            by_number = -(-self.expected // MAX_PER_LOOKUP)
            if by_number > 1:
                held = self._count()
                pages = -(-held // PAGE_SIZE)
                if pages + 1 < by_number and self._affordable(pages):
                    self._directory = self._read() if held else {}
        return self._directory is not None

    def _affordable(self, pages: int) -> bool:
        """The list is read whole or not at all: one the rest of today's calls cannot finish would be read again,
        and again cut short, every day; then numbers are asked a group at a time, and each group lands."""
        left = self.client.pacer.day_remaining
        return left is None or pages < left - settings.DAILY_CALL_FLOOR

    def _list(self, **params: Any) -> Iterator[Any]:
        where = f'Type=="{self.entity.xero_type}"'
        if self.entity.is_credit_note:
            return paged(lambda **p: self.client.read("get_credit_notes", **p), "credit_notes", where=where,
                         unitdp=4, **params)
        return paged(lambda **p: self.client.read("get_invoices", **p), "invoices", where=where, summary_only=True,
                     **params)

    def _count(self) -> int:
        method, collection = (("get_credit_notes", "credit_notes") if self.entity.is_credit_note
                              else ("get_invoices", "invoices"))
        extra = {} if self.entity.is_credit_note else {"summary_only": True}
        reply = self.client.read(method, where=f'Type=="{self.entity.xero_type}"', page=1, page_size=1, **extra)
        pagination = getattr(reply, "pagination", None)
        return int(getattr(pagination, "item_count", 0) or 0) if pagination else len(getattr(reply, collection) or [])

    def _read(self) -> dict[str, tuple[str, ...]]:
        number, key = (("credit_note_number", "credit_note_id") if self.entity.is_credit_note
                       else ("invoice_number", "invoice_id"))
        directory: dict[str, tuple[str, ...]] = {}
        for doc in self._list(page_size=PAGE_SIZE):
            if getattr(doc, number):
                folded = number_key(getattr(doc, number))
                directory[folded] = (*directory.get(folded, ()), str(getattr(doc, key)))
        return directory
