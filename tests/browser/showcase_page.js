// Calls dracula's Showcase service (idl/showcase.thrift, examples/showcase.py) from a page of
// another origin with Apache Thrift's browser library (thrift.js: Thrift.TXHRTransport,
// Thrift.TJSONProtocol) and the client `thrift --gen js` makes. The server is ?server=HOST:PORT.
// Each call writes <li data-call="NAME">ok JSON | raised DESCRIPTION</li> into #results; the
// last, asynchronous one then adds <p id="done">, so a page that never finished is told apart.
(function () {
  "use strict";
  var server = new URLSearchParams(window.location.search).get("server");
  var transport = new Thrift.TXHRTransport("http://" + server + "/");
  var client = new ShowcaseClient(new Thrift.TJSONProtocol(transport));
  var results = document.getElementById("results");

  function record(name, text) {
    var item = document.createElement("li");
    item.setAttribute("data-call", name);
    item.textContent = text;
    results.appendChild(item);
  }

  function describe(error) {
    if (error instanceof NotFound) {
      return "NotFound " + JSON.stringify({ key: error.key, code: error.code });
    }
    if (error instanceof Invalid) {
      return "Invalid " + JSON.stringify({ reason: error.reason });
    }
    if (error instanceof Thrift.TApplicationException) {
      return "TApplicationException " + JSON.stringify({ code: error.code, message: error.message });
    }
    if (error && error.name) {
      return error.name; // the XHR's NetworkError, a SyntaxError reading an empty answer
    }
    return String(error);
  }

  // Synchronous calls (the generated method without a callback): each XHR has completed, or
  // thrown, before the next line runs.
  function call(name, fn) {
    try {
      record(name, "ok " + JSON.stringify(fn()));
    } catch (error) {
      record(name, "raised " + describe(error));
    }
  }

  call("ping", function () {
    return client.ping() === undefined ? "pong" : "unexpected";
  });
  call("add", function () {
    return client.add(2, 40);
  });
  call("echo_shape", function () {
    var shape = client.echo_shape(
      new Shape({
        name: "s \u00e9",
        points: [new Point({ x: 1, y: -2 }), new Point({ x: 3, y: 4 })],
        color: Color.BLUE,
        labels: { a: [new Point({ x: 5, y: 6 })], b: [] },
        tags: [7, 5],
        blob: "\u0000ab\u00ff",
      })
    );
    return {
      name: shape.name,
      points: shape.points,
      color: shape.color,
      labels: shape.labels,
      tags: shape.tags.slice().sort(),
      blob: Array.prototype.map.call(shape.blob, function (c) { return c.charCodeAt(0); }),
    };
  });
  call("index", function () {
    return client.index([new Point({ x: 1, y: 2 }), new Point({ x: -3, y: 4 })]);
  });
  call("lookup", function () {
    return client.lookup("dracula");
  });
  call("lookup_missing", function () {
    return client.lookup("missing");
  });
  call("lookup_empty", function () {
    return client.lookup("");
  });
  call("fail", function () {
    return client.fail("boom");
  });

  // An asynchronous call (a callback: the generated code hands it the result or the error).
  client.next_color(Color.RED, function (result) {
    if (result instanceof Error || (result && result.name)) {
      record("next_color", "raised " + describe(result));
    } else {
      record("next_color", "ok " + JSON.stringify(result));
    }
    var done = document.createElement("p");
    done.id = "done";
    document.body.appendChild(done);
  });
})();
