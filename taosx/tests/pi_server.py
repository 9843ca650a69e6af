# A small PI Web API server for the tests, following the documented endpoints:
#   GET /piwebapi/points?path=\\server\tag        -> {"WebId", "Name", "PointType", "EngineeringUnits", "Descriptor"}
#   GET /piwebapi/streams/{webId}/recorded?startTime=&endTime=*&maxCount= -> {"Items": [{"Timestamp", "Value", "Good"}]}
# Basic auth piuser:pipass. Each point has one value per second from BASE (ms) until now.
import base64, json, sys, time
from datetime import datetime, timezone
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from urllib.parse import urlparse, parse_qs

PORT, BASE = int(sys.argv[1]), int(sys.argv[2])
POINTS = {
    "\\\\pisrv\\sinusoid": ("W1", "SINUSOID", "Float32", "deg", "sine wave"),
    "\\\\pisrv\\cdt158": ("W2", "CDT158", "Float64", "%", "tank level"),
    "\\\\pisrv\\valve": ("W3", "VALVE1", "Digital", "", "valve state"),
}
AUTH = "Basic " + base64.b64encode(b"piuser:pipass").decode()

def iso(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

def parse_time(s):
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)

def value(web_id, i):
    if web_id == "W3":
        return {"Name": "Open" if i % 2 else "Closed", "Value": i % 2}
    if web_id == "W1":
        return round((i % 60) / 10.0, 3)
    return 50.0 + i % 7

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.headers.get("Authorization") != AUTH:
            return self.reply(401, {"Errors": ["Authorization required"]})
        u = urlparse(self.path)
        q = parse_qs(u.query)
        if u.path == "/piwebapi/points":
            p = POINTS.get(q.get("path", [""])[0])
            if not p:
                return self.reply(404, {"Errors": ["point not found"]})
            return self.reply(200, {"WebId": p[0], "Name": p[1], "PointType": p[2],
                                    "EngineeringUnits": p[3], "Descriptor": p[4]})
        if u.path == "/piwebapi/dataservers":
            if q.get("path", [""])[0] != "\\\\pisrv":
                return self.reply(404, {"Errors": ["data server not found"]})
            return self.reply(200, {"WebId": "DS1", "Name": "pisrv"})
        if u.path == "/piwebapi/dataservers/DS1/points":
            import fnmatch
            pat = q.get("nameFilter", ["*"])[0].lower()
            items = [{"WebId": p[0], "Name": p[1], "Path": path, "PointType": p[2]}
                     for path, p in POINTS.items() if fnmatch.fnmatch(p[1].lower(), pat)]
            return self.reply(200, {"Items": items})
        parts = u.path.split("/")
        if len(parts) == 5 and parts[2] == "streams" and parts[4] == "recorded":
            web_id = parts[3]
            start = max(BASE, parse_time(q["startTime"][0]))
            max_count = int(q.get("maxCount", ["1000"])[0])
            now = int(time.time() * 1000)
            t = BASE + ((start - BASE + 999) // 1000) * 1000
            items = []
            while t <= now and len(items) < max_count:
                i = (t - BASE) // 1000
                items.append({"Timestamp": iso(t), "Value": value(web_id, i), "Good": True})
                t += 1000
            return self.reply(200, {"Items": items})
        self.reply(404, {"Errors": ["no such endpoint"]})

ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
