"""dracula.wire.errors.AppError is the one table of TApplicationException types: it must number
and name them as Apache Thrift and thriftpy2 do, and add fbthrift's two."""

from thrift.Thrift import TApplicationException as ApacheError
from thriftpy2.thrift import TApplicationException as ThriftpyError

from dracula.wire.errors import AppError, app_error_name


def test_every_type_from_0_to_12_in_order():
    assert [member.value for member in AppError] == list(range(13))


def test_numbered_and_named_as_apache_thrift_and_thriftpy2():
    for member in AppError:
        for library in (ApacheError, ThriftpyError):
            if hasattr(library, member.name):
                assert getattr(library, member.name) == member, (library, member)
    assert all(hasattr(ApacheError, member.name) for member in AppError if member <= 10)


def test_fbthrift_additions():
    assert (AppError.LOADSHEDDING, AppError.TIMEOUT) == (11, 12)


def test_names_for_log_lines_and_dracula_call():
    assert app_error_name(7) == "PROTOCOL_ERROR"
    assert app_error_name(AppError.TIMEOUT) == "TIMEOUT"
    assert app_error_name(99) == "UNKNOWN(99)"
