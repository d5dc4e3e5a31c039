"""asyncio echo, the client: thriftpy2's make_aio_client, unchanged."""

import asyncio
import os

import thriftpy2
from thriftpy2.rpc import make_aio_client

echo_thrift = thriftpy2.load(os.path.join(os.path.dirname(__file__), "echo.thrift"), module_name="echo_thrift")
HOST, PORT = "127.0.0.1", 6000


async def main():
    client = await make_aio_client(echo_thrift.EchoService, HOST, PORT)
    print(await client.echo("hello, dracula"))
    client.close()


if __name__ == "__main__":
    asyncio.run(main())
