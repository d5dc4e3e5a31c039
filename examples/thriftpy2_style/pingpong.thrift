// The pingpong examples' service (and one of the multiplexed examples' two).
service PingService {
    string ping(),
}
