// The calculator examples' service: four operations, one of which can fail as declared.
exception DivideByZero {
    1: string message,
}

service Calculator {
    i32 add(1: i32 a, 2: i32 b),
    i32 sub(1: i32 a, 2: i32 b),
    i32 mult(1: i32 a, 2: i32 b),
    i32 div(1: i32 a, 2: i32 b) throws (1: DivideByZero e),
}
