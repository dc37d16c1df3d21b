// A small HTTP app to run inside an instance for the HTTP services tests and bench: python3 (in the
// default image), stdlib only. Routes: GET /who (what the app saw: peer port, headers, path),
// GET /big?n= (n bytes of x), GET /count?n= (n bytes i % 251), GET /sse (one event, then a second once /tmp/go exists, then the end),
// POST /echo (streams the request body back as it arrives, chunked in and out), GET /ws (a
// WebSocket echo). HTTP/1.1 with keep-alive.
export const SERVICE_APP = String.raw`
import base64, hashlib, json, os, socket, struct, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def setup(self):
        super().setup()
        # Headers and body are separate writes: without this, Nagle + delayed ACK add ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def send_json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200); self.send_header('Content-Type', 'application/json'); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        path, _, q = self.path.partition('?')
        if path == '/ws' and self.headers.get('Upgrade', '').lower() == 'websocket': return self.ws()
        if path == '/big':
            n = int(q.split('=')[1]) if q else 1 << 20
            self.send_response(200); self.send_header('Content-Type', 'application/octet-stream'); self.send_header('Content-Length', str(n)); self.end_headers()
            chunk = b'x' * 262144
            while n > 0:
                k = min(n, len(chunk)); self.wfile.write(chunk[:k] if k < len(chunk) else chunk); n -= k
            return
        if path == '/count':
            # Bytes i % 251 (a prime, so any chunk boundary shifts the pattern): a body in which a
            # lost, doubled or reordered piece shows.
            n = int(q.split('=')[1]); chunk = bytes(range(251)) * 1044
            self.send_response(200); self.send_header('Content-Type', 'application/octet-stream'); self.send_header('Content-Length', str(n)); self.end_headers()
            while n > 0:
                k = min(n, len(chunk)); self.wfile.write(chunk[:k]); n -= k
            return
        if path == '/sse':
            self.send_response(200); self.send_header('Content-Type', 'text/event-stream'); self.send_header('Cache-Control', 'no-cache'); self.send_header('Connection', 'close'); self.end_headers()
            self.wfile.write(b'data: one\n\n'); self.wfile.flush()
            while not os.path.exists('/tmp/go'): time.sleep(0.05)
            self.wfile.write(b'data: two\n\n'); self.close_connection = True
            return
        self.send_json({'peer': self.client_address[1], 'path': self.path, 'headers': {k.lower(): v for k, v in self.headers.items()}})
    def do_POST(self):
        self.send_response(200); self.send_header('Content-Type', 'application/octet-stream'); self.send_header('Transfer-Encoding', 'chunked'); self.end_headers()
        def out(b): self.wfile.write(b'%x\r\n%s\r\n' % (len(b), b)); self.wfile.flush()
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            while True:
                size = int(self.rfile.readline().strip().split(b';')[0], 16)
                if size == 0: self.rfile.readline(); break
                data = self.rfile.read(size); self.rfile.readline(); out(data)
        else:
            n = int(self.headers.get('Content-Length', 0))
            while n > 0:
                d = self.rfile.read1(min(n, 65536)); n -= len(d); out(d)
        self.wfile.write(b'0\r\n\r\n')
    def ws(self):
        acc = base64.b64encode(hashlib.sha1((self.headers['Sec-WebSocket-Key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
        self.send_response(101); self.send_header('Upgrade', 'websocket'); self.send_header('Connection', 'Upgrade'); self.send_header('Sec-WebSocket-Accept', acc); self.end_headers()
        r = self.rfile
        while True:
            h = r.read(2)
            if len(h) < 2: break
            op = h[0] & 15; n = h[1] & 127
            if n == 126: n = struct.unpack('>H', r.read(2))[0]
            elif n == 127: n = struct.unpack('>Q', r.read(8))[0]
            mask = r.read(4) if h[1] & 128 else b'\0\0\0\0'
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(r.read(n)))
            if op == 8: self.wfile.write(b'\x88\x00'); break
            if op == 9: op = 10
            n = len(data)
            hdr = bytes([128 | op]) + (bytes([n]) if n < 126 else bytes([126]) + struct.pack('>H', n) if n < 65536 else bytes([127]) + struct.pack('>Q', n))
            self.wfile.write(hdr + data)
        self.close_connection = True

ThreadingHTTPServer(('0.0.0.0', int(sys.argv[1])), H).serve_forever()
`;

/** Writes the app into the instance, starts it as a background process on `port` and waits
 *  until it answers. `api` is the test harness's (or bench's) API call. */
export async function startServiceApp(api: (m: string, p: string, b?: unknown) => Promise<{ status: number; body: any }>, id: string, port: number): Promise<void> {
  const put = await api('POST', `/v1/instances/${id}/exec`, { command: 'cat > /tmp/service-app.py', stdin: SERVICE_APP });
  if (put.body.exitCode !== 0) throw new Error(`could not write the app: ${JSON.stringify(put.body)}`);
  const p = await api('POST', `/v1/instances/${id}/processes`, { command: `python3 /tmp/service-app.py ${port}` });
  if (typeof p.body?.pid !== 'number') throw new Error(`could not start the app: ${JSON.stringify(p.body)}`);
  const up = await api('POST', `/v1/instances/${id}/exec`, { command: `for i in $(seq 200); do curl -s -o /dev/null http://127.0.0.1:${port}/who && exit 0; sleep 0.05; done; exit 1` });
  if (up.body.exitCode !== 0) throw new Error('the app did not start listening');
}
