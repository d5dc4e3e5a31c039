// For tests/test_middleware.py: one handler of each kind, and each outcome a call can have.
namespace py middleware

exception Refused {
    1: string why,
}

service Hooked {
    string plain(1: string tag),                          // a plain handler, run inline
    string coro(1: string tag),                           // an async def handler
    string pooled(1: string tag),                         // a @dracula.blocking handler
    string fails(1: string tag) throws (1: Refused refused),  // "declared" raises Refused, else RuntimeError
}
