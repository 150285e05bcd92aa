// A Dubbo 2 provider and consumer written with Caucho Hessian (Debian's libhessian-java, the code Dubbo's
// hessian-lite forked), so the bodies flowtap reads in tests were written by Java. Plain javac, no Maven.
//
//   java -cp hessian.jar:. DubboPeer provider PORT     serve UserService until stdin closes
//   java -cp hessian.jar:. DubboPeer consumer PORT     send the scripted calls pipelined, print one JSON line per answer

import com.caucho.hessian.io.Hessian2Input;
import com.caucho.hessian.io.Hessian2Output;
import java.io.*;
import java.net.*;
import java.util.*;
import java.util.concurrent.*;

public class DubboPeer {
  public static class User implements Serializable {
    public long id;
    public String name;
    public Date created;
    public Map<String, Object> tags;
    public List<String> roles;
    public User() {}
    public User(long id, String name) {
      this.id = id; this.name = name; this.created = new Date(1700000000123L);
      this.tags = new LinkedHashMap<>(); this.tags.put("tier", "gold"); this.tags.put("score", 42);
      Map<String, Object> nested = new LinkedHashMap<>(); nested.put("list", Arrays.asList(1, 2, 3)); nested.put("ok", true);
      this.tags.put("nested", nested);
      this.roles = new ArrayList<>(Arrays.asList("admin", "ops"));
    }
  }

  /** The Book of Pipy's rest2dubbo demo (io.flomesh.demo.api.BookWarehouseService). */
  public static class Book implements Serializable {
    public long id;
    public String isbn;
    public String author;
    public String name;
    public int value;
    public Date date;
    public Book() {}
    public Book(long id) {
      this.id = id;
      this.isbn = "978-" + (1000000000L + id);
      // Non-ASCII authors for some books: UTF-8 through Hessian and JSON.
      this.author = id % 3 == 0 ? "Łukasz Żółć" : id % 3 == 1 ? "松本 行弘" : "Ada Lovelace";
      this.name = "Book #" + id;
      this.value = (int) (id * 7 % 100);
      this.date = new Date(1600000000000L + id * 86400000L);
    }
  }

  static final int HEADER = 16;

  static class Frame { byte[] header; byte[] body; long id; }

  /** One whole frame: the 16-byte header, the body its length names, and the request id. */
  static Frame readFrame(DataInputStream in) throws IOException {
    Frame f = new Frame();
    f.header = new byte[HEADER];
    in.readFully(f.header);
    byte[] h = f.header;
    int len = ((h[12] & 0xff) << 24) | ((h[13] & 0xff) << 16) | ((h[14] & 0xff) << 8) | (h[15] & 0xff);
    f.body = new byte[len];
    in.readFully(f.body);
    for (int i = 4; i < 12; i++) f.id = (f.id << 8) | (h[i] & 0xff);
    return f;
  }

  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[1]);
    if (args[0].equals("provider")) provider(port);
    else consumer(port);
  }

  // ---- provider ----

  static void provider(int port) throws Exception {
    ServerSocket ss = new ServerSocket(port, 50, InetAddress.getLoopbackAddress());
    System.out.println("listening " + ss.getLocalPort());
    Thread t = new Thread(() -> {
      try { while (System.in.read() >= 0) {} } catch (IOException e) {}
      System.exit(0);
    });
    t.setDaemon(true);
    t.start();
    while (true) {
      Socket s = ss.accept();
      new Thread(() -> serve(s)).start();
    }
  }

  static void serve(Socket s) {
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
      OutputStream out = s.getOutputStream();
      while (true) {
        Frame f = readFrame(in);
        byte[] h = f.header;
        byte[] body = f.body;
        final long rid = f.id;
        boolean event = (h[2] & 0x20) != 0;
        boolean twoWay = (h[2] & 0x40) != 0;
        if (event) { write(out, frame((byte) 0x22, (byte) 20, rid, new byte[] { 'N' })); continue; }
        Hessian2Input hi = new Hessian2Input(new ByteArrayInputStream(body));
        String dubboVersion = hi.readString();
        String service = hi.readString();
        Object version = hi.readObject(); // may be null
        String method = hi.readString();
        String desc = hi.readString();
        int n = countParams(desc);
        Object[] a = new Object[n];
        for (int i = 0; i < n; i++) a[i] = hi.readObject();
        Object attachments = hi.readObject();
        if (!twoWay) continue;
        pool.submit(() -> {
          try { write(out, answer(rid, service, method, a, attachments)); } catch (Exception e) { e.printStackTrace(); }
        });
      }
    } catch (EOFException e) {
      // client closed
    } catch (IOException e) {
      e.printStackTrace();
    } finally {
      pool.shutdown();
      try { pool.awaitTermination(5, TimeUnit.SECONDS); s.close(); } catch (Exception e) {}
    }
  }

  /** getBook(String id): a Book; "slow:MS" sleeps first; an unknown id throws IllegalArgumentException. */
  static byte[] book(long rid, String method, Object[] a, Map<String, Object> att) throws Exception {
    if (!method.equals("getBook")) return error(rid, (byte) 40, "unknown method " + method);
    String id = (String) a[0];
    if (id.startsWith("slow:")) {
      Thread.sleep(Long.parseLong(id.substring(5)));
      return value(rid, new Book(1), att);
    }
    if (id.equals("none")) return nullValue(rid, att);
    long n;
    try { n = Long.parseLong(id); } catch (NumberFormatException e) { n = -1; }
    if (n < 1 || n > 100000) return exception(rid, new IllegalArgumentException("no book with id " + id), att);
    // Answers leave out of order: each call takes its own few milliseconds.
    Thread.sleep((n * 7919) % 7);
    return value(rid, new Book(n), att);
  }

  static synchronized void write(OutputStream out, byte[] b) throws IOException {
    out.write(b);
    out.flush();
  }

  static byte[] answer(long id, String service, String method, Object[] a, Object attachments) throws Exception {
    Map<String, Object> att = new HashMap<>();
    att.put("dubbo", "2.0.2");
    if (service.equals("io.flomesh.demo.api.BookWarehouseService")) return book(id, method, a, att);
    switch (method) {
      case "login": return value(id, new User(7, (String) a[0]), att);
      case "getUser": return value(id, new User(((Number) a[0]).longValue(), "user-" + a[0]), att);
      case "echo": return value(id, a[0], att);
      case "echoPlain": return valueNoAttachments(id, a[0]);
      case "nothing": return nullValue(id, att);
      case "big": {
        StringBuilder sb = new StringBuilder();
        while (sb.length() < 150_000) sb.append("héllo wörld ✓ 😀 ");
        return value(id, sb.toString(), att);
      }
      case "slow": {
        Thread.sleep(((Number) a[0]).longValue());
        return value(id, "slept " + a[0], att);
      }
      case "fail": return exception(id, new IllegalStateException((String) a[0]), att);
      case "missing": return error(id, (byte) 60, "Not found exported service: " + service + ":" + method);
      default: return error(id, (byte) 40, "unknown method " + method);
    }
  }

  static byte[] value(long id, Object v, Map<String, Object> att) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    Hessian2Output o = new Hessian2Output(bo);
    o.writeInt(4); // RESPONSE_VALUE_WITH_ATTACHMENTS
    o.writeObject(v);
    o.writeObject(att);
    o.flush();
    return frame((byte) 0x02, (byte) 20, id, bo.toByteArray());
  }

  static byte[] valueNoAttachments(long id, Object v) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    Hessian2Output o = new Hessian2Output(bo);
    o.writeInt(1);
    o.writeObject(v);
    o.flush();
    return frame((byte) 0x02, (byte) 20, id, bo.toByteArray());
  }

  static byte[] nullValue(long id, Map<String, Object> att) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    Hessian2Output o = new Hessian2Output(bo);
    o.writeInt(5);
    o.writeObject(att);
    o.flush();
    return frame((byte) 0x02, (byte) 20, id, bo.toByteArray());
  }

  static byte[] exception(long id, Throwable t, Map<String, Object> att) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    Hessian2Output o = new Hessian2Output(bo);
    o.writeInt(3);
    o.writeObject(t);
    o.writeObject(att);
    o.flush();
    return frame((byte) 0x02, (byte) 20, id, bo.toByteArray());
  }

  static byte[] error(long id, byte status, String msg) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    Hessian2Output o = new Hessian2Output(bo);
    o.writeString(msg);
    o.flush();
    return frame((byte) 0x02, status, id, bo.toByteArray());
  }

  static byte[] frame(byte flag, byte status, long id, byte[] body) {
    byte[] f = new byte[HEADER + body.length];
    f[0] = (byte) 0xda; f[1] = (byte) 0xbb; f[2] = flag; f[3] = status;
    for (int i = 0; i < 8; i++) f[4 + i] = (byte) (id >>> (56 - 8 * i));
    int len = body.length;
    f[12] = (byte) (len >>> 24); f[13] = (byte) (len >>> 16); f[14] = (byte) (len >>> 8); f[15] = (byte) len;
    System.arraycopy(body, 0, f, HEADER, len);
    return f;
  }

  static int countParams(String desc) {
    int n = 0;
    for (int i = 0; i < desc.length(); i++) {
      char c = desc.charAt(i);
      while (c == '[') c = desc.charAt(++i);
      if (c == 'L') i = desc.indexOf(';', i);
      n++;
    }
    return n;
  }

  // ---- consumer ----

  static byte[] request(long id, String service, Object version, String method, String desc, Object[] args, boolean twoWay) throws IOException {
    ByteArrayOutputStream bo = new ByteArrayOutputStream();
    Hessian2Output o = new Hessian2Output(bo);
    o.writeString("2.0.2");
    o.writeString(service);
    o.writeObject(version);
    o.writeString(method);
    o.writeString(desc);
    for (Object a : args) o.writeObject(a);
    Map<String, Object> att = new HashMap<>();
    att.put("path", service);
    att.put("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    att.put("X-Request-ID", "java-" + id);
    o.writeObject(att);
    o.flush();
    return frame((byte) (0x82 | (twoWay ? 0x40 : 0)), (byte) 0, id, bo.toByteArray());
  }

  static void consumer(int port) throws Exception {
    Socket s = new Socket(InetAddress.getLoopbackAddress(), port);
    OutputStream out = s.getOutputStream();
    String svc = "org.example.UserService";
    Map<String, Object> nested = new LinkedHashMap<>();
    nested.put("name", "ünïcødé ✓");
    nested.put("big", 9007199254740993L);
    nested.put("neg", -9007199254740993L);
    nested.put("list", Arrays.asList("a", 1, 2.5, Arrays.asList(true, false)));
    nested.put("when", new Date(1700000000000L));
    List<Object[]> calls = new ArrayList<>();
    calls.add(new Object[] { 1L, "slow", "I", new Object[] { 300 }, "1.0.0" });
    calls.add(new Object[] { 2L, "login", "Ljava/lang/String;Ljava/lang/String;", new Object[] { "alice", "s3cret" }, null });
    calls.add(new Object[] { 3L, "getUser", "J", new Object[] { 9007199254740993L }, "" });
    calls.add(new Object[] { 4L, "echo", "Ljava/util/Map;", new Object[] { nested }, "1.0.0" });
    calls.add(new Object[] { 5L, "fail", "Ljava/lang/String;", new Object[] { "no such order: 42" }, "1.0.0" });
    calls.add(new Object[] { 6L, "missing", "", new Object[] {}, "1.0.0" });
    calls.add(new Object[] { 7L, "big", "", new Object[] {}, "1.0.0" });
    calls.add(new Object[] { 8L, "nothing", "", new Object[] {}, "1.0.0" });
    calls.add(new Object[] { 9L, "slow", "I", new Object[] { 100 }, "1.0.0" });
    calls.add(new Object[] { 10L, "echoPlain", "[J", new Object[] { new long[] { 1, -1, 4294967296L } }, "1.0.0" });
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    for (Object[] c : calls) all.write(request((Long) c[0], svc, c[4], (String) c[1], (String) c[2], (Object[]) c[3], true));
    all.write(request(11L, svc, "1.0.0", "echo", "Ljava/lang/String;", new Object[] { "one-way" }, false));
    all.write(frame((byte) 0xe2, (byte) 0, 12L, new byte[] { 'N' })); // heartbeat
    out.write(all.toByteArray()); // pipelined: one write
    out.flush();
    DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
    for (int k = 0; k < calls.size() + 1; k++) { // the heartbeat is answered too; the one-way call is not
      Frame f = readFrame(in);
      byte[] h = f.header;
      byte[] body = f.body;
      long id = f.id;
      int status = h[3] & 0xff;
      boolean event = (h[2] & 0x20) != 0;
      StringBuilder line = new StringBuilder("{\"id\":\"" + id + "\",\"status\":" + status + ",\"event\":" + event);
      if (!event) {
        Hessian2Input hi = new Hessian2Input(new ByteArrayInputStream(body));
        if (status == 20) {
          int flag = hi.readInt();
          line.append(",\"flag\":").append(flag);
          if (flag == 1 || flag == 4) line.append(",\"value\":").append(json(hi.readObject()));
          if (flag == 0 || flag == 3) {
            Throwable t = (Throwable) hi.readObject();
            line.append(",\"exception\":").append(json(t.getClass().getName() + ": " + t.getMessage()));
          }
          if (flag >= 3) line.append(",\"attachments\":").append(json(hi.readObject()));
        } else {
          line.append(",\"error\":").append(json(hi.readString()));
        }
      }
      System.out.println(line.append("}"));
    }
    s.close();
  }

  /** Just enough JSON for the values above; POJOs by their public fields, longs as strings when unsafe. */
  static String json(Object v) {
    if (v == null) return "null";
    if (v instanceof String) {
      StringBuilder b = new StringBuilder("\"");
      for (char c : ((String) v).toCharArray()) {
        if (c == '"' || c == '\\') b.append('\\').append(c);
        else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
        else b.append(c);
      }
      return b.append('"').toString();
    }
    if (v instanceof Long) {
      long l = (Long) v;
      return Math.abs(l) <= 9007199254740991L ? Long.toString(l) : "\"" + l + "\"";
    }
    if (v instanceof Number || v instanceof Boolean) return v.toString();
    if (v instanceof Date) return "{\"$date\":" + ((Date) v).getTime() + "}";
    if (v instanceof long[]) { List<Object> l = new ArrayList<>(); for (long x : (long[]) v) l.add(x); return json(l); }
    if (v instanceof Map) {
      StringBuilder b = new StringBuilder("{");
      for (Map.Entry<?, ?> e : new TreeMap<Object, Object>((Map<?, ?>) v).entrySet()) {
        if (b.length() > 1) b.append(',');
        b.append(json(String.valueOf(e.getKey()))).append(':').append(json(e.getValue()));
      }
      return b.append('}').toString();
    }
    if (v instanceof Collection) {
      StringBuilder b = new StringBuilder("[");
      for (Object o : (Collection<?>) v) { if (b.length() > 1) b.append(','); b.append(json(o)); }
      return b.append(']').toString();
    }
    if (v instanceof User) {
      User u = (User) v;
      Map<String, Object> m = new TreeMap<>();
      m.put("id", u.id); m.put("name", u.name); m.put("created", u.created); m.put("tags", u.tags); m.put("roles", u.roles);
      return json(m);
    }
    return json(v.toString());
  }
}
