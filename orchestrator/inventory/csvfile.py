"""CSV exported from an asset database: a header row, one host per row, extra columns are vars."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from orchestrator.errors import InventoryError
from orchestrator.inventory.ansible_vars import PLAINTEXT_SECRETS
from orchestrator.inventory.raw import Origin, Owner, RawHost, RawInventory, Value
from orchestrator.inventory.settings import INLINE_SECRET, put, secret_ref

SETTING_COLUMNS = {
    "address": "address",
    "transport": "transport",
    "platform": "platform",
    "port": "port",
    "user": "user",
    "key_file": "key_file",
    "shell_type": "shell_type",
    "become": "become.enabled",
    "become_user": "become.user",
}
SECRET_COLUMNS = {"password_env": "env", "password_file": "file", "password_prompt": "prompt"}
SECRET_WORDS = frozenset({"password", "passwd", "key_passphrase", *PLAINTEXT_SECRETS})
GROUP_SEPARATORS = re.compile(r"[;,\s]+")
NOT_NAME = re.compile(r"[^a-z0-9_]+")


def parse(text: str, file: str) -> RawInventory:
    """The raw content of one CSV inventory (text already decoded, BOM removed)."""
    inventory = RawInventory(files=[file])
    rows = _rows(text, file)
    header_line, header = next(rows, (1, []))
    columns = _columns(header, file, header_line)
    for line, cells in rows:
        if len(cells) != len(columns):
            raise InventoryError(
                f"row has {len(cells)} cells but the header has {len(columns)} columns; "
                "quote cells that contain commas",
                file=file,
                line=line,
            )
        _host(inventory, dict(zip(columns, cells, strict=True)), Origin(file, line))
    return inventory


def _rows(text: str, file: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows with the line each starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InventoryError(f"CSV cannot be read: {exc}", file=file, line=line) from None
        if any(cell.strip() for cell in row):
            yield line, row


def _columns(header: list[str], file: str, line: int) -> list[str]:
    # "Asset Tag" becomes the var asset_tag, a name templates can use.
    columns = [NOT_NAME.sub("_", cell.strip().lower()).strip("_") for cell in header]
    if "name" not in columns:
        raise InventoryError(
            "the first row must be a header naming the columns, with at least 'name'",
            file=file,
            line=line,
        )
    for index, column in enumerate(columns, start=1):
        if not column:
            raise InventoryError(f"column {index} of the header has no name", file=file, line=line)
        if columns.index(column) != index - 1:
            raise InventoryError(
                f"column {column!r} appears twice in the header", file=file, line=line
            )
        if column in SECRET_WORDS:
            raise InventoryError(f"column {column!r}: {INLINE_SECRET}", file=file, line=line)
    return columns


def _host(inventory: RawInventory, row: dict[str, str], where: Origin) -> None:
    name = row["name"].strip()
    if not name:
        raise InventoryError(
            "the name cell is empty; every row needs a host name", file=where.file, line=where.line
        )
    owner = Owner("host", name)
    host = RawHost(name, where)
    for column, cell in row.items():
        value = cell.strip()
        if column == "name" or not value:
            continue
        if column == "groups":
            for group in GROUP_SEPARATORS.split(value):
                if group:
                    host.groups.setdefault(group, where)
        elif column in SETTING_COLUMNS:
            put(host.layer, SETTING_COLUMNS[column], value, where, owner, column)
        elif column in SECRET_COLUMNS:

            def fail(message: str, column: str = column) -> InventoryError:
                return owner.error(message, where, column)

            if "password" in host.layer.settings:
                raise fail("fill only one of password_env, password_file, password_prompt")
            ref = secret_ref(SECRET_COLUMNS[column], value, fail)
            host.layer.settings["password"] = Value(ref, where)
        else:
            host.layer.vars[column] = Value(value, where)
    single = RawInventory(hosts={name: host})
    inventory.absorb(single)
