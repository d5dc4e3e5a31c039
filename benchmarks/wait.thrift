// benchmarks/handlers_that_wait.py's service: a handler that waits, as one waiting on a
// database or another service does, beside a call that does not.
service WaitService {
    string ping(),
    string wait(1: i32 ms),  // time.sleep(ms / 1000), then "waited <ms> ms"
}
