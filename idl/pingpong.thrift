// The smallest useful service: the README's first command serves it.
service PingService {
    string ping(),
}
