// A struct-heavy call for the real-payload benchmark (benchmarks/payload_qps.py): lists of
// structs, a map of lists, a set, a string and bytes, against a handler that does almost nothing.
struct Point {
    1: i32 x,
    2: i32 y,
}

struct Shape {
    1: string name,
    2: list<Point> points,
    3: map<string, list<Point>> labels,
    4: set<i64> tags,
    5: binary blob,
}

service PayloadService {
    i32 count(1: Shape shape),
}
