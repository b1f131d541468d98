"""`contacts.imports`: the total a console import's progress bar counts to, and an
import's status moving once."""

from __future__ import annotations

import io

import pytest

from tidings.contacts.imports import ImportStatus, _finish, count_rows
from tidings.contacts.models import ContactImport


def test_rows_are_counted_as_csv_reads_them_and_the_file_is_left_at_its_start() -> None:
    source = io.BytesIO(b'email,note\na@example.com,"two\nlines"\nb@example.com,x\n')
    assert count_rows(source) == 2  # the quoted newline is inside one row
    assert source.tell() == 0


def test_a_header_alone_or_nothing_is_no_row() -> None:
    assert count_rows(io.BytesIO(b"email\n")) == 0
    assert count_rows(io.BytesIO(b"")) == 0


def test_bad_utf8_is_still_counted() -> None:
    assert count_rows(io.BytesIO(b"email\n\xff@example.com\nok@example.com\n")) == 2


def test_an_import_finishes_once() -> None:
    row = ContactImport(id=1, status=ImportStatus.RUNNING)
    _finish(row, ImportStatus.DONE)
    assert row.status == ImportStatus.DONE
    assert row.finished_at is not None
    with pytest.raises(ValueError, match="is done already"):
        _finish(row, ImportStatus.FAILED)
    assert row.status == ImportStatus.DONE
