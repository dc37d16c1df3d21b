// A process that keeps its state only in memory: a counter served on 127.0.0.1:9000 inside the
// sandbox; every GET adds one and answers the new value. Tests that branch, commit or restore
// use it to tell a carried-over process from a fresh one.
export const COUNTER_SERVER = `
import http.server
count = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global count
        count += 1
        body = str(count).encode()
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', 9000), H).serve_forever()
`;

/** A shell line that starts the counter in the background and waits until it answers (count 1). */
export const START_COUNTER = `cat > /root/counter.py <<'EOF'\n${COUNTER_SERVER}\nEOF\nnohup python3 /root/counter.py >/dev/null 2>&1 &\nfor i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:9000/ && break; sleep 0.05; done`;
