// Every IDL type and every dispatch outcome, for the examples and the tests.
namespace py showcase

enum Color {
    RED = 1,
    GREEN = 2,
    BLUE = 3,
}

struct Point {
    1: required i32 x,
    2: required i32 y,
}

struct Shape {
    1: string name,
    2: list<Point> points,
    3: Color color = Color.RED,
    4: optional map<string, list<Point>> labels,
    5: set<i64> tags,
    6: binary blob,
}

struct Scalars {
    1: bool flag,
    2: byte tiny,
    3: i16 small,
    4: i32 medium,
    5: i64 large,
    6: double real,
    7: string text,
    8: binary raw,
    9: Color color,
}

exception NotFound {
    1: string key,
    2: i32 code,
}

exception Invalid {
    1: string reason,
}

service Showcase {
    void ping(),
    Scalars echo_scalars(1: Scalars s),
    Shape echo_shape(1: Shape shape),
    list<Shape> shapes(1: i32 n),
    map<string, Point> index(1: list<Point> points),
    set<string> unique(1: list<string> words),
    map<i32, map<string, list<set<i16>>>> nested(1: map<i32, map<string, list<set<i16>>>> value),
    Color next_color(1: Color color),
    binary reverse(1: binary data),
    string lookup(1: string key) throws (1: NotFound not_found, 2: Invalid invalid),
    i32 fail(1: string message),
    oneway void record(1: string event),
    list<string> recorded(),
    string sleep_async(1: i32 ms),
    string sleep_blocking(1: i32 ms),
    Scalars wrong_type(),
    i64 add(1: i64 a, 2: i64 b),
}
