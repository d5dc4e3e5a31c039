// Included by coverage.thrift: typedefs, constants, an enum, a struct with defaults and
// optional/required fields, an exception, and a base service that CoverageService extends.
namespace py coverage.base

typedef i64 Timestamp
typedef string Name

const i32 MAX_ITEMS = 100
const string GREETING = "hello, thrift"
const double RATIO = 0.25
const Timestamp EPOCH = 0

enum Level {
    LOW = 1,
    MID = 5,
    HIGH = 10,
}

struct Item {
    1: required Name name,
    2: optional i32 count,
    3: Level level = Level.MID,
    4: Timestamp created = EPOCH,
    5: optional binary payload,
}

exception ItemError {
    1: string message,
    2: Level level = Level.HIGH,
}

service BaseService {
    string version(),
    Item make_item(1: Name name, 2: i32 count = 3),
    Level raise_level(1: Level level) throws (1: ItemError error),
}
