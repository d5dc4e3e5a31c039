// IDL coverage for the interop tests: an include, typedefs (of base types, containers and
// included types), constants of every shape (scalar, struct, list, set, map, list of structs),
// enums, default values, optional/required fields, nested containers of structs, binary, and a
// service that extends an included one.
namespace py coverage

include "base.thrift"

typedef list<base.Item> ItemList
typedef map<string, list<base.Item>> Catalog
typedef binary Blob
typedef set<string> Tags

const base.Item DEFAULT_ITEM = {"name": "default", "count": 1, "level": base.Level.LOW}
const list<string> COLORS = ["red", "green", "blue"]
const set<i16> PRIMES = [2, 3, 5, 7]
const map<string, i32> LIMITS = {"small": 10, "large": 1000}
const list<base.Item> STARTER = [{"name": "first"}, {"name": "second", "count": 2}]
const map<i32, list<string>> ALIASES = {1: ["one", "uno"], 2: ["two"]}
const base.Name ANONYMOUS = "anonymous"

enum Mode {
    OFF = 0,
    ON = 1,
    AUTO = 7,
}

struct Defaults {
    1: i32 number = 42,
    2: string text = "dflt",
    3: base.Level level = base.Level.HIGH,
    4: list<i32> numbers = [1, 2, 3],
    5: map<string, i32> weights = {"x": 1, "y": 2},
    6: Tags tags = ["t"],
    7: bool flag = true,
    8: double ratio = base.RATIO,
    9: base.Item item = {"name": "nested-default"},
    10: optional i32 maybe,
    11: optional string maybe_text = "opt-default",
    12: required i64 must,
    13: Mode mode = Mode.AUTO,
    14: base.Timestamp stamp = 1234,
    15: byte tiny = -1,
    16: i16 small = 300,
}

struct Bag {
    1: Catalog catalog,
    2: list<map<i32, set<string>>> layers,
    3: map<base.Level, base.Item> by_level,
    4: Blob blob,
    5: list<list<base.Item>> grid,
    6: map<string, map<string, base.Item>> deep,
    7: optional ItemList items,
    8: set<base.Level> levels,
    9: list<Blob> blobs,
    10: map<i64, double> measures,
    11: list<bool> bits,
    12: map<Mode, Tags> by_mode,
    13: optional Defaults defaults,
}

exception Rejected {
    1: string why,
    2: optional Bag evidence,
}

service CoverageService extends base.BaseService {
    Defaults echo_defaults(1: Defaults d),
    Defaults fresh_defaults(),
    Bag echo_bag(1: Bag bag),
    Catalog group(1: ItemList items),
    list<map<i32, set<string>>> layers(1: i32 n),
    Blob concat(1: list<Blob> parts),
    i32 with_default_arg(1: i32 a = 5, 2: optional i32 b),
    string needs(1: required string key, 2: optional string extra),
    base.Item pick(1: ItemList items, 2: i32 index) throws (1: base.ItemError error, 2: Rejected rejected),
    base.Item default_item(),
    Bag constants(),
    Mode toggle(1: Mode mode),
    oneway void note(1: string text),
    list<string> notes(),
}
