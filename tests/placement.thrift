// For tests/test_placement.py: where each kind of handler runs. Every method returns the name
// of the thread it ran on.
namespace py placement

service Placed {
    string ping(),                  // plain and cheap: stays on the reactor
    string wait(1: i32 ms),         // plain: sleeps `ms` as a database call would; -1: until released
    string cheap(1: i32 ms),        // @dracula.inline: sleeps `ms`, never moved
    string coro(1: i32 ms),         // async def that blocks the loop with time.sleep(`ms`)
}
