// The oneway example's service: the client does not wait for the handler.
service Sleep {
    oneway void sleep(1: i32 seconds),
}
