// The asyncio example's service.
service EchoService {
    string echo(1: string param),
}
