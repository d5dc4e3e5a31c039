// A C++ client for part of idl/showcase.thrift, built against Apache Thrift's C++ library
// (Debian: libthrift-dev). There is no thrift compiler here, so it does by hand what generated
// code does: writeMessageBegin / the args struct / writeMessageEnd / flush, then
// readMessageBegin, TApplicationException::read on T_EXCEPTION, and the result struct read
// field by field, checking the reply's name and seqid as generated C++ clients do.
//
//   showcase_client HOST PORT binary|compact buffered|framed|header [SHOWCASE_NAME [PING_NAME]]
//
// SHOWCASE_NAME: call Showcase through TMultiplexedProtocol under that service name.
// PING_NAME: also call PingService.ping (multiplexed under that name) and print its reply.
// header: THeader (THeaderProtocol with binary or compact inside). Every call then carries the
// request header x-tag=cpp, and after add_after a line prints that reply's headers
// ("reply_headers k=v,k=v" sorted by key, or "reply_headers -"). No zlib transform: libthrift
// 0.17's THeaderTransport::untransform inflates a reply into the receive buffer sized for the
// compressed frame, a heap overflow once the reply outgrows it (fixed upstream after 0.17).
// One line per call on stdout; exit status 0 when every call got the reply it should parse,
// 2 for bad usage, 3 for a reply that breaks the protocol (name, seqid, type, field types).
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/protocol/THeaderProtocol.h>
#include <thrift/protocol/TMultiplexedProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

using apache::thrift::TApplicationException;
using namespace apache::thrift::protocol;
using namespace apache::thrift::transport;

namespace {

struct ProtocolViolation : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Point {
    int32_t x = 0;
    int32_t y = 0;
};

struct Shape {
    std::optional<std::string> name;
    std::optional<std::vector<Point>> points;
    std::optional<int32_t> color;
    std::optional<std::map<std::string, std::vector<Point>>> labels;
    std::optional<std::set<int64_t>> tags;
    std::optional<std::string> blob;
};

struct NotFound {
    std::string key;
    int32_t code = 0;
};

struct Invalid {
    std::string reason;
};

void expect(bool ok, const std::string& what) {
    if (!ok) throw ProtocolViolation(what);
}

// -- writing ---------------------------------------------------------------------------------

void write_point(TProtocol& p, const Point& pt) {
    p.writeStructBegin("Point");
    p.writeFieldBegin("x", T_I32, 1);
    p.writeI32(pt.x);
    p.writeFieldEnd();
    p.writeFieldBegin("y", T_I32, 2);
    p.writeI32(pt.y);
    p.writeFieldEnd();
    p.writeFieldStop();
    p.writeStructEnd();
}

void write_points(TProtocol& p, const std::vector<Point>& points) {
    p.writeListBegin(T_STRUCT, static_cast<uint32_t>(points.size()));
    for (const auto& pt : points) write_point(p, pt);
    p.writeListEnd();
}

void write_shape(TProtocol& p, const Shape& s) {
    p.writeStructBegin("Shape");
    if (s.name) {
        p.writeFieldBegin("name", T_STRING, 1);
        p.writeString(*s.name);
        p.writeFieldEnd();
    }
    if (s.points) {
        p.writeFieldBegin("points", T_LIST, 2);
        write_points(p, *s.points);
        p.writeFieldEnd();
    }
    if (s.color) {
        p.writeFieldBegin("color", T_I32, 3);
        p.writeI32(*s.color);
        p.writeFieldEnd();
    }
    if (s.labels) {
        p.writeFieldBegin("labels", T_MAP, 4);
        p.writeMapBegin(T_STRING, T_LIST, static_cast<uint32_t>(s.labels->size()));
        for (const auto& kv : *s.labels) {
            p.writeString(kv.first);
            write_points(p, kv.second);
        }
        p.writeMapEnd();
        p.writeFieldEnd();
    }
    if (s.tags) {
        p.writeFieldBegin("tags", T_SET, 5);
        p.writeSetBegin(T_I64, static_cast<uint32_t>(s.tags->size()));
        for (int64_t t : *s.tags) p.writeI64(t);
        p.writeSetEnd();
        p.writeFieldEnd();
    }
    if (s.blob) {
        p.writeFieldBegin("blob", T_STRING, 6);
        p.writeBinary(*s.blob);
        p.writeFieldEnd();
    }
    p.writeFieldStop();
    p.writeStructEnd();
}

// -- reading ---------------------------------------------------------------------------------

Point read_point(TProtocol& p) {
    Point pt;
    std::string fname;
    TType ftype;
    int16_t fid;
    p.readStructBegin(fname);
    while (true) {
        p.readFieldBegin(fname, ftype, fid);
        if (ftype == T_STOP) break;
        if (fid == 1 && ftype == T_I32) p.readI32(pt.x);
        else if (fid == 2 && ftype == T_I32) p.readI32(pt.y);
        else p.skip(ftype);
        p.readFieldEnd();
    }
    p.readStructEnd();
    return pt;
}

std::vector<Point> read_points(TProtocol& p) {
    TType etype;
    uint32_t size;
    p.readListBegin(etype, size);
    expect(etype == T_STRUCT, "list<Point> with element type " + std::to_string(etype));
    std::vector<Point> points;
    for (uint32_t i = 0; i < size; ++i) points.push_back(read_point(p));
    p.readListEnd();
    return points;
}

Shape read_shape(TProtocol& p) {
    Shape s;
    std::string fname;
    TType ftype;
    int16_t fid;
    p.readStructBegin(fname);
    while (true) {
        p.readFieldBegin(fname, ftype, fid);
        if (ftype == T_STOP) break;
        if (fid == 1 && ftype == T_STRING) {
            s.name.emplace();
            p.readString(*s.name);
        } else if (fid == 2 && ftype == T_LIST) {
            s.points = read_points(p);
        } else if (fid == 3 && ftype == T_I32) {
            int32_t c;
            p.readI32(c);
            s.color = c;
        } else if (fid == 4 && ftype == T_MAP) {
            TType ktype, vtype;
            uint32_t size;
            p.readMapBegin(ktype, vtype, size);
            // An empty compact map carries no element types: only check a non-empty one.
            expect(size == 0 || (ktype == T_STRING && vtype == T_LIST), "labels map types");
            s.labels.emplace();
            for (uint32_t i = 0; i < size; ++i) {
                std::string key;
                p.readString(key);
                (*s.labels)[key] = read_points(p);
            }
            p.readMapEnd();
        } else if (fid == 5 && ftype == T_SET) {
            TType etype;
            uint32_t size;
            p.readSetBegin(etype, size);
            expect(size == 0 || etype == T_I64, "tags set type");
            s.tags.emplace();
            for (uint32_t i = 0; i < size; ++i) {
                int64_t t;
                p.readI64(t);
                s.tags->insert(t);
            }
            p.readSetEnd();
        } else if (fid == 6 && ftype == T_STRING) {
            s.blob.emplace();
            p.readBinary(*s.blob);
        } else {
            p.skip(ftype);
        }
        p.readFieldEnd();
    }
    p.readStructEnd();
    return s;
}

std::string hex(const std::string& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string points_text(const std::vector<Point>& points) {
    std::ostringstream out;
    for (const auto& pt : points) out << "(" << pt.x << "," << pt.y << ")";
    return out.str();
}

std::string shape_text(const Shape& s) {
    std::ostringstream out;
    out << "name=" << (s.name ? *s.name : "-");
    out << "|points=" << (s.points ? points_text(*s.points) : "-");
    out << "|color=" << (s.color ? std::to_string(*s.color) : "-");
    out << "|labels=";
    if (s.labels) {
        bool first = true;
        for (const auto& kv : *s.labels) {
            out << (first ? "" : ";") << kv.first << ":" << points_text(kv.second);
            first = false;
        }
    } else {
        out << "-";
    }
    out << "|tags=";
    if (s.tags) {
        bool first = true;
        for (int64_t t : *s.tags) {
            out << (first ? "" : ",") << t;
            first = false;
        }
    } else {
        out << "-";
    }
    out << "|blob=" << (s.blob ? hex(*s.blob) : "-");
    return out.str();
}

std::string headers_text(const THeaderProtocol::StringToStringMap& headers) {
    if (headers.empty()) return "-";
    std::string out;
    for (const auto& kv : headers) out += (out.empty() ? "" : ",") + kv.first + "=" + kv.second;
    return out;  // std::map: already sorted by key
}

// -- calls -----------------------------------------------------------------------------------

class Client {
  public:
    // header: the THeader protocol under `proto` (itself or the one a TMultiplexedProtocol
    // wraps), or null for other transports.
    explicit Client(std::shared_ptr<TProtocol> proto,
                    std::shared_ptr<THeaderProtocol> header = nullptr)
        : p_(std::move(proto)), header_(std::move(header)) {}

    // Writes the call; `args` writes the fields of the arguments struct.
    template <typename Args>
    void send(const std::string& method, Args args) {
        ++seqid_;
        // THeaderTransport::flush clears the request headers: set them for every call.
        if (header_) header_->setHeader("x-tag", "cpp");
        p_->writeMessageBegin(method, T_CALL, seqid_);
        p_->writeStructBegin((method + "_args").c_str());
        args(*p_);
        p_->writeFieldStop();
        p_->writeStructEnd();
        p_->writeMessageEnd();
        p_->getTransport()->writeEnd();
        p_->getTransport()->flush();
    }

    // Reads the reply's header; throws TApplicationException for T_EXCEPTION. Then `result`
    // reads the fields of the result struct (field id, type) until STOP.
    template <typename Result>
    void recv(const std::string& method, Result result) {
        std::string fname;
        TMessageType mtype;
        int32_t rseqid = 0;
        p_->readMessageBegin(fname, mtype, rseqid);
        if (mtype == T_EXCEPTION) {
            TApplicationException x;
            x.read(p_.get());
            p_->readMessageEnd();
            p_->getTransport()->readEnd();
            throw x;
        }
        expect(mtype == T_REPLY, method + ": message type " + std::to_string(mtype));
        expect(fname == method, method + ": reply named " + fname);
        expect(rseqid == seqid_, method + ": reply seqid " + std::to_string(rseqid) +
                                     " to call " + std::to_string(seqid_));
        std::string sname;
        TType ftype;
        int16_t fid;
        p_->readStructBegin(sname);
        while (true) {
            p_->readFieldBegin(sname, ftype, fid);
            if (ftype == T_STOP) break;
            if (!result(*p_, fid, ftype)) p_->skip(ftype);
            p_->readFieldEnd();
        }
        p_->readStructEnd();
        p_->readMessageEnd();
        p_->getTransport()->readEnd();
    }

    int64_t add(int64_t a, int64_t b) {
        send("add", [&](TProtocol& p) {
            p.writeFieldBegin("a", T_I64, 1);
            p.writeI64(a);
            p.writeFieldEnd();
            p.writeFieldBegin("b", T_I64, 2);
            p.writeI64(b);
            p.writeFieldEnd();
        });
        std::optional<int64_t> success;
        recv("add", [&](TProtocol& p, int16_t fid, TType t) {
            if (fid != 0 || t != T_I64) return false;
            int64_t v;
            p.readI64(v);
            success = v;
            return true;
        });
        expect(success.has_value(), "add: no result");
        return *success;
    }

    Shape echo_shape(const Shape& shape) {
        send("echo_shape", [&](TProtocol& p) {
            p.writeFieldBegin("shape", T_STRUCT, 1);
            write_shape(p, shape);
            p.writeFieldEnd();
        });
        std::optional<Shape> success;
        recv("echo_shape", [&](TProtocol& p, int16_t fid, TType t) {
            if (fid != 0 || t != T_STRUCT) return false;
            success = read_shape(p);
            return true;
        });
        expect(success.has_value(), "echo_shape: no result");
        return *success;
    }

    std::string reverse(const std::string& data) {
        send("reverse", [&](TProtocol& p) {
            p.writeFieldBegin("data", T_STRING, 1);
            p.writeBinary(data);
            p.writeFieldEnd();
        });
        std::optional<std::string> success;
        recv("reverse", [&](TProtocol& p, int16_t fid, TType t) {
            if (fid != 0 || t != T_STRING) return false;
            success.emplace();
            p.readBinary(*success);
            return true;
        });
        expect(success.has_value(), "reverse: no result");
        return *success;
    }

    // Prints the outcome: the value, or which declared exception and its fields.
    std::string lookup(const std::string& key) {
        send("lookup", [&](TProtocol& p) {
            p.writeFieldBegin("key", T_STRING, 1);
            p.writeString(key);
            p.writeFieldEnd();
        });
        std::optional<std::string> success;
        std::optional<NotFound> not_found;
        std::optional<Invalid> invalid;
        recv("lookup", [&](TProtocol& p, int16_t fid, TType t) {
            std::string sname, fname;
            TType ftype;
            int16_t id;
            if (fid == 0 && t == T_STRING) {
                success.emplace();
                p.readString(*success);
            } else if (fid == 1 && t == T_STRUCT) {
                not_found.emplace();
                p.readStructBegin(sname);
                while (true) {
                    p.readFieldBegin(fname, ftype, id);
                    if (ftype == T_STOP) break;
                    if (id == 1 && ftype == T_STRING) p.readString(not_found->key);
                    else if (id == 2 && ftype == T_I32) p.readI32(not_found->code);
                    else p.skip(ftype);
                    p.readFieldEnd();
                }
                p.readStructEnd();
            } else if (fid == 2 && t == T_STRUCT) {
                invalid.emplace();
                p.readStructBegin(sname);
                while (true) {
                    p.readFieldBegin(fname, ftype, id);
                    if (ftype == T_STOP) break;
                    if (id == 1 && ftype == T_STRING) p.readString(invalid->reason);
                    else p.skip(ftype);
                    p.readFieldEnd();
                }
                p.readStructEnd();
            } else {
                return false;
            }
            return true;
        });
        if (not_found) return "not_found key=" + not_found->key + " code=" + std::to_string(not_found->code);
        if (invalid) return "invalid reason=" + invalid->reason;
        expect(success.has_value(), "lookup: no result");
        return "value " + *success;
    }

    int32_t fail(const std::string& message) {
        send("fail", [&](TProtocol& p) {
            p.writeFieldBegin("message", T_STRING, 1);
            p.writeString(message);
            p.writeFieldEnd();
        });
        std::optional<int32_t> success;
        recv("fail", [&](TProtocol& p, int16_t fid, TType t) {
            if (fid != 0 || t != T_I32) return false;
            int32_t v;
            p.readI32(v);
            success = v;
            return true;
        });
        expect(success.has_value(), "fail: no result");
        return *success;
    }

    std::string ping_pong() {  // PingService: string ping()
        send("ping", [](TProtocol&) {});
        std::optional<std::string> success;
        recv("ping", [&](TProtocol& p, int16_t fid, TType t) {
            if (fid != 0 || t != T_STRING) return false;
            success.emplace();
            p.readString(*success);
            return true;
        });
        expect(success.has_value(), "ping: no result");
        return *success;
    }

  private:
    std::shared_ptr<TProtocol> p_;
    std::shared_ptr<THeaderProtocol> header_;
    int32_t seqid_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5 || argc > 7) {
        std::cerr << "usage: " << argv[0]
                  << " HOST PORT binary|compact buffered|framed|header"
                     " [SHOWCASE_NAME [PING_NAME]]\n";
        return 2;
    }
    const std::string host = argv[1], protocol = argv[3], transport = argv[4];
    const int port = std::stoi(argv[2]);
    const bool header = transport == "header";
    if ((protocol != "binary" && protocol != "compact") ||
        (transport != "buffered" && transport != "framed" && !header)) {
        std::cerr << "protocol must be binary|compact, transport buffered|framed|header\n";
        return 2;
    }

    auto socket = std::make_shared<TSocket>(host, port);
    socket->setRecvTimeout(10000);  // a hang becomes a failure
    socket->setSendTimeout(10000);
    std::shared_ptr<TTransport> trans;
    std::shared_ptr<TProtocol> proto;
    std::shared_ptr<THeaderProtocol> header_proto;
    if (header) {
        header_proto = std::make_shared<THeaderProtocol>(
            socket, protocol == "compact" ? T_COMPACT_PROTOCOL : T_BINARY_PROTOCOL);
        proto = header_proto;
        trans = proto->getTransport();
    } else {
        if (transport == "framed") trans = std::make_shared<TFramedTransport>(socket);
        else trans = std::make_shared<TBufferedTransport>(socket);
        if (protocol == "compact") proto = std::make_shared<TCompactProtocol>(trans);
        else proto = std::make_shared<TBinaryProtocol>(trans);
    }

    std::shared_ptr<TProtocol> showcase_proto = proto;
    if (argc >= 6) showcase_proto = std::make_shared<TMultiplexedProtocol>(proto, argv[5]);

    try {
        trans->open();
        Client c(showcase_proto, header_proto);
        std::cout << "add " << c.add((int64_t{1} << 40) + 1, -3) << "\n";
        std::cout << "add_max " << c.add(INT64_MAX - 1, 1) << "\n";

        Shape s;
        s.name = "cpp shape";
        s.points = std::vector<Point>{{1, 2}, {-3, INT32_MAX}};
        s.color = 3;
        s.labels = std::map<std::string, std::vector<Point>>{{"a", {{5, 6}}}, {"b", {}}};
        s.tags = std::set<int64_t>{7, -8, INT64_MIN};
        s.blob = std::string("\x00\x01\xff\x80", 4);
        std::cout << "echo_shape " << shape_text(c.echo_shape(s)) << "\n";

        Shape bare;  // only a name: the server applies the IDL default color (RED = 1)
        bare.name = "bare";
        std::cout << "echo_bare " << shape_text(c.echo_shape(bare)) << "\n";

        std::string data;
        for (int i = 0; i < 100000; ++i) data += static_cast<char>(i % 251);
        std::string back = c.reverse(data);
        std::string want(data.rbegin(), data.rend());
        std::cout << "reverse " << data.size() << " " << (back == want ? "ok" : "MISMATCH") << "\n";

        std::cout << "lookup " << c.lookup("ok") << "\n";
        std::cout << "lookup_missing " << c.lookup("missing") << "\n";
        std::cout << "lookup_empty " << c.lookup("") << "\n";
        try {
            int32_t v = c.fail("cpp boom");
            std::cout << "fail returned " << v << "\n";
        } catch (const TApplicationException& x) {
            std::cout << "fail TApplicationException type=" << x.getType() << " message=" << x.what()
                      << "\n";
        }
        std::cout << "add_after " << c.add(40, 2) << "\n";
        if (header_proto)
            std::cout << "reply_headers " << headers_text(header_proto->getHeaders()) << "\n";

        if (argc == 7) {
            Client ping(std::make_shared<TMultiplexedProtocol>(proto, argv[6]), header_proto);
            std::cout << "ping " << ping.ping_pong() << "\n";
        }
        trans->close();
    } catch (const ProtocolViolation& e) {
        std::cout.flush();
        std::cerr << "protocol violation: " << e.what() << "\n";
        return 3;
    } catch (const std::exception& e) {
        std::cout.flush();
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
