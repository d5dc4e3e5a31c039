// For tests/test_context.py: handlers that report what dracula.current_call() tells them.
namespace py context

service CallInfo {
    string plain(1: string tag),    // a plain handler, run inline
    string coro(1: string tag),     // an async def handler
    string pooled(1: string tag),   // a @dracula.blocking handler
    string hold(),                  // @dracula.blocking: returns once the test releases it
    string stall(),                 // async: waits until it is cancelled
}
