// A Node.js client for idl/showcase.thrift: the code `thrift --gen js:node` generates, run on
// Apache Thrift's Node.js library (npm `thrift`, pinned in package.json / package-lock.json).
// tests/test_node_client.py generates the code into GEN_DIR and runs this with NODE_PATH set
// to tests/node/node_modules (the generated code requires `thrift` and `node-int64`).
//
//   node showcase_client.js GEN_DIR HOST PORT binary|compact buffered|framed|header
//        [SHOWCASE_NAME [PING_NAME]]
//
// buffered: unframed. header: THeader (TBufferedTransport + THeaderProtocol, whose frames carry
// their own length) with binary or compact inside.
// SHOWCASE_NAME: call Showcase through the library's Multiplexer under that service name.
// PING_NAME: also call PingService.ping (multiplexed under that name) and print its reply.
// One line per call on stdout, the lines tests/client_programs.py expects; exit status 0 when
// every call got the reply it should, 1 on any other error (a connection error or close, or a
// reply the library cannot parse), 2 for bad usage.
"use strict";

const path = require("path");
const thrift = require("thrift");
const Int64 = require("node-int64");

const PROTOCOLS = { binary: thrift.TBinaryProtocol, compact: thrift.TCompactProtocol };
const TRANSPORTS = ["buffered", "framed", "header"];
const HEADER_SUBPROTOCOL = { binary: 0, compact: 2 };  // THeaderTransport.SubprotocolId
const TIMEOUT_MS = 30000;  // for the whole run: a hang becomes a failure

function usage() {
  console.error("usage: node showcase_client.js GEN_DIR HOST PORT binary|compact"
    + " buffered|framed|header [SHOWCASE_NAME [PING_NAME]]");
  process.exit(2);
}

// i64 values as BigInt here; node-int64 objects (exact for every 64-bit value) on the wire.
function toInt64(big) {
  const u = BigInt.asUintN(64, big);
  return new Int64(Number(u >> 32n), Number(u & 0xffffffffn));
}

function fromInt64(value) {
  return BigInt.asIntN(64, BigInt("0x" + value.toOctetString()));
}

function pointsText(points) {
  return points.map((p) => "(" + p.x + "," + p.y + ")").join("");
}

function isSet(value) {
  return value !== null && value !== undefined;
}

// The same text as the C++ client's: unset fields as "-", map keys and set members sorted.
function shapeText(s) {
  const labels = isSet(s.labels)
    ? Object.keys(s.labels).sort().map((k) => k + ":" + pointsText(s.labels[k])).join(";") : "-";
  const tags = isSet(s.tags)
    ? s.tags.map(fromInt64).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).join(",") : "-";
  return "name=" + (isSet(s.name) ? s.name : "-")
    + "|points=" + (isSet(s.points) ? pointsText(s.points) : "-")
    + "|color=" + (isSet(s.color) ? s.color : "-")
    + "|labels=" + labels
    + "|tags=" + tags
    + "|blob=" + (isSet(s.blob) ? Buffer.from(s.blob).toString("hex") : "-");
}

// The outcome: the value, or which declared exception and its fields.
async function lookup(client, types, key) {
  try {
    return "value " + await client.lookup(key);
  } catch (x) {
    if (x instanceof types.NotFound) return "not_found key=" + x.key + " code=" + x.code;
    if (x instanceof types.Invalid) return "invalid reason=" + x.reason;
    throw x;
  }
}

async function callShowcase(client, types) {
  console.log("add " + fromInt64(await client.add(toInt64((1n << 40n) + 1n), toInt64(-3n))));
  console.log("add_max " + fromInt64(await client.add(toInt64((1n << 63n) - 2n), toInt64(1n))));

  const shape = new types.Shape({
    name: "node shape",
    points: [new types.Point({ x: 1, y: 2 }), new types.Point({ x: -3, y: 2147483647 })],
    color: types.Color.BLUE,
    labels: { a: [new types.Point({ x: 5, y: 6 })], b: [] },
    tags: [7n, -8n, -(1n << 63n)].map(toInt64),
    blob: Buffer.from([0x00, 0x01, 0xff, 0x80]),
  });
  console.log("echo_shape " + shapeText(await client.echo_shape(shape)));
  // Only a name: the generated constructor sets the IDL default color (RED = 1).
  console.log("echo_bare " + shapeText(await client.echo_shape(new types.Shape({ name: "bare" }))));

  const data = Buffer.alloc(100000);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const back = await client.reverse(data);
  const want = Buffer.from(data).reverse();
  console.log("reverse " + data.length + " " + (want.equals(Buffer.from(back)) ? "ok" : "MISMATCH"));

  console.log("lookup " + await lookup(client, types, "ok"));
  console.log("lookup_missing " + await lookup(client, types, "missing"));
  console.log("lookup_empty " + await lookup(client, types, ""));
  try {
    console.log("fail returned " + await client.fail("node boom"));
  } catch (x) {
    if (!(x instanceof thrift.Thrift.TApplicationException)) throw x;
    console.log("fail TApplicationException type=" + x.type + " message=" + x.message);
  }
  console.log("add_after " + fromInt64(await client.add(toInt64(40n), toInt64(2n))));
}

// THeaderProtocol writes its header in THeaderProtocol.flush, but the code thrift 0.17
// generates for js:node flushes the transport (`this.output.flush()`), so a generated client
// sends bare binary/compact. Writing the header where the transport flushes makes it send the
// library's real THeader frames, with the sub-protocol its transport names.
function speakTHeader(client, protocol) {
  const transport = client.output;
  const flush = transport.flush.bind(transport);
  transport.setProtocolId(HEADER_SUBPROTOCOL[protocol]);
  transport.flush = () => {
    transport.writeHeaders();
    return flush();
  };
}

async function main(argv) {
  const [genDir, host, port, protocol, transport, showcaseName, pingName] = argv;
  if (argv.length < 5 || argv.length > 7 || !(protocol in PROTOCOLS)
      || !TRANSPORTS.includes(transport)) usage();
  const Showcase = require(path.resolve(genDir, "Showcase"));
  const PingService = require(path.resolve(genDir, "PingService"));
  const types = require(path.resolve(genDir, "showcase_types"));

  const header = transport === "header";
  const connection = thrift.createConnection(host, Number(port), {
    transport: transport === "framed" ? thrift.TFramedTransport : thrift.TBufferedTransport,
    protocol: header ? thrift.THeaderProtocol : PROTOCOLS[protocol],
    connect_timeout: TIMEOUT_MS,
  });
  let finished = false;
  const timer = setTimeout(() => fail("not done within " + TIMEOUT_MS + " ms"), TIMEOUT_MS);
  // The library reports what it cannot parse, and a dropped connection, only as events.
  connection.on("error", (e) => fail("connection error: " + (e && e.stack ? e.stack : e)));
  connection.on("close", () => finished || fail("connection closed by the server"));

  const multiplexer = new thrift.Multiplexer();
  const client = showcaseName ? multiplexer.createClient(showcaseName, Showcase, connection)
    : thrift.createClient(Showcase, connection);
  if (header) speakTHeader(client, protocol);
  await callShowcase(client, types);
  if (pingName) {
    const ping = multiplexer.createClient(pingName, PingService, connection);
    if (header) speakTHeader(ping, protocol);
    console.log("ping " + await ping.ping());
  }
  finished = true;
  clearTimeout(timer);
  connection.end();
}

function fail(why) {
  console.error("error: " + why);
  process.exit(1);
}

main(process.argv.slice(2)).catch((e) => fail(e && e.stack ? e.stack : e));
