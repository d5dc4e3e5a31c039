// A Java client for idl/showcase.thrift: the code `thrift --gen java` generates (Showcase,
// Shape, Point, ... in the default package), run on Apache Thrift's Java library (Debian:
// libthrift-java). tests/test_java_client.py generates, compiles and runs it.
//
//   java ShowcaseClient HOST PORT binary|compact buffered|framed [SHOWCASE_NAME [PING_NAME]]
//
// buffered: the bare socket (Java has no TBufferedTransport; TSocket buffers its streams).
// SHOWCASE_NAME: call Showcase through TMultiplexedProtocol under that service name.
// PING_NAME: also call PingService.ping (multiplexed under that name) and print its reply.
// One line per call on stdout, the lines tests/client_programs.py expects; exit status 0 when
// every call got the reply it should, 1 on any other error, 2 for bad usage.
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

import org.apache.thrift.TApplicationException;
import org.apache.thrift.protocol.TBinaryProtocol;
import org.apache.thrift.protocol.TCompactProtocol;
import org.apache.thrift.protocol.TMultiplexedProtocol;
import org.apache.thrift.protocol.TProtocol;
import org.apache.thrift.transport.TSocket;
import org.apache.thrift.transport.TTransport;
import org.apache.thrift.transport.layered.TFramedTransport;

public class ShowcaseClient {
    private static final int TIMEOUT_MS = 10_000;  // a hang becomes a failure

    public static void main(String[] args) throws Exception {
        if (args.length < 4 || args.length > 6
                || !Arrays.asList("binary", "compact").contains(args[2])
                || !Arrays.asList("buffered", "framed").contains(args[3])) {
            System.err.println("usage: ShowcaseClient HOST PORT binary|compact buffered|framed"
                    + " [SHOWCASE_NAME [PING_NAME]]");
            System.exit(2);
        }
        TTransport transport = new TSocket(args[0], Integer.parseInt(args[1]), TIMEOUT_MS);
        if (args[3].equals("framed")) transport = new TFramedTransport(transport);
        TProtocol protocol = args[2].equals("compact")
                ? new TCompactProtocol(transport) : new TBinaryProtocol(transport);
        TProtocol showcaseProtocol = args.length >= 5
                ? new TMultiplexedProtocol(protocol, args[4]) : protocol;
        transport.open();
        try {
            callShowcase(new Showcase.Client(showcaseProtocol));
            if (args.length == 6) {
                PingService.Client ping = new PingService.Client(
                        new TMultiplexedProtocol(protocol, args[5]));
                System.out.println("ping " + ping.ping());
            }
        } finally {
            transport.close();
        }
    }

    private static void callShowcase(Showcase.Client c) throws Exception {
        System.out.println("add " + c.add((1L << 40) + 1, -3));
        System.out.println("add_max " + c.add(Long.MAX_VALUE - 1, 1));

        Map<String, List<Point>> labels = new HashMap<>();
        labels.put("a", List.of(new Point(5, 6)));
        labels.put("b", new ArrayList<>());
        Shape shape = new Shape()
                .setName("java shape")
                .setPoints(List.of(new Point(1, 2), new Point(-3, Integer.MAX_VALUE)))
                .setColor(Color.BLUE)
                .setLabels(labels)
                .setTags(new HashSet<>(List.of(7L, -8L, Long.MIN_VALUE)))
                .setBlob(new byte[] {0x00, 0x01, (byte) 0xff, (byte) 0x80});
        System.out.println("echo_shape " + shapeText(c.echo_shape(shape)));
        // Only a name: the generated constructor sets the IDL default color (RED = 1).
        System.out.println("echo_bare " + shapeText(c.echo_shape(new Shape().setName("bare"))));

        byte[] data = new byte[100_000];
        for (int i = 0; i < data.length; i++) data[i] = (byte) (i % 251);
        byte[] back = bytes(c.reverse(ByteBuffer.wrap(data)));
        byte[] want = new byte[data.length];
        for (int i = 0; i < data.length; i++) want[i] = data[data.length - 1 - i];
        System.out.println("reverse " + data.length + " " + (Arrays.equals(back, want) ? "ok" : "MISMATCH"));

        System.out.println("lookup " + lookup(c, "ok"));
        System.out.println("lookup_missing " + lookup(c, "missing"));
        System.out.println("lookup_empty " + lookup(c, ""));
        try {
            System.out.println("fail returned " + c.fail("java boom"));
        } catch (TApplicationException x) {
            System.out.println("fail TApplicationException type=" + x.getType() + " message=" + x.getMessage());
        }
        System.out.println("add_after " + c.add(40, 2));
    }

    // The outcome: the value, or which declared exception and its fields.
    private static String lookup(Showcase.Client c, String key) throws Exception {
        try {
            return "value " + c.lookup(key);
        } catch (NotFound x) {
            return "not_found key=" + x.getKey() + " code=" + x.getCode();
        } catch (Invalid x) {
            return "invalid reason=" + x.getReason();
        }
    }

    private static byte[] bytes(ByteBuffer buffer) {
        byte[] out = new byte[buffer.remaining()];
        buffer.duplicate().get(out);
        return out;
    }

    private static String pointsText(List<Point> points) {
        StringBuilder out = new StringBuilder();
        for (Point p : points) out.append("(").append(p.getX()).append(",").append(p.getY()).append(")");
        return out.toString();
    }

    // The same text as the C++ client's: unset fields as "-", map keys and set members sorted.
    private static String shapeText(Shape s) {
        StringBuilder out = new StringBuilder();
        out.append("name=").append(s.isSetName() ? s.getName() : "-");
        out.append("|points=").append(s.isSetPoints() ? pointsText(s.getPoints()) : "-");
        out.append("|color=").append(s.isSetColor() ? String.valueOf(s.getColor().getValue()) : "-");
        out.append("|labels=");
        if (s.isSetLabels()) {
            List<String> parts = new ArrayList<>();
            for (Map.Entry<String, List<Point>> kv : new TreeMap<>(s.getLabels()).entrySet()) {
                parts.add(kv.getKey() + ":" + pointsText(kv.getValue()));
            }
            out.append(String.join(";", parts));
        } else {
            out.append("-");
        }
        out.append("|tags=");
        if (s.isSetTags()) {
            List<String> parts = new ArrayList<>();
            for (long t : new TreeSet<>(s.getTags())) parts.add(Long.toString(t));
            out.append(String.join(",", parts));
        } else {
            out.append("-");
        }
        out.append("|blob=");
        if (s.isSetBlob()) {
            for (byte b : s.getBlob()) out.append(String.format("%02x", b & 0xff));
        } else {
            out.append("-");
        }
        return out.toString();
    }
}
