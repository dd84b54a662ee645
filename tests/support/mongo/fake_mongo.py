#!/usr/bin/python3
"""A MongoDB test double that speaks the real wire protocol, for ticketaid's tests.

Debian 12 ships no MongoDB server, so the tests of the MongoDB mirror run the real C
driver (mongo-c-driver 1.23) and real pymongo against this in-memory double. Run it
with Debian's /usr/bin/python3: it needs the `bson` module of python3-pymongo.

    fake_mongo.py [--port P] [--control-port C] [--log FILE] [--verbose]

Ports default to 0 (a free port). Once both ports listen it prints exactly one line,
`fake_mongo mongo=<port> control=<port>`, to standard output. SIGTERM or SIGINT end it
cleanly. The URI to use is

    mongodb://127.0.0.1:PORT/?replicaSet=rs0&serverSelectionTimeoutMS=2000
        &connectTimeoutMS=2000&socketTimeoutMS=5000

Protocol. A connection's handshake and the driver's monitoring checks come as a
legacy OP_QUERY `isMaster`/`ismaster`/`hello` on `admin.$cmd`, answered with OP_REPLY;
every other command is an OP_MSG (body section plus document sequences such as
`updates`, which are appended to the body under their identifier), answered with an
OP_MSG body. Checksums are skipped; moreToCome requests get no reply; compression is
never advertised. The double presents itself as the primary of a one-node replica set
"rs0" (so the driver sends lsid and txnNumber for retryable writes) without a
topologyVersion (so the driver polls instead of streaming awaitable hellos).

Commands: hello/isMaster/ismaster, ping, buildInfo (5.0.0), endSessions,
killCursors, create, createIndexes, listIndexes, listCollections, update, insert,
delete, find, drop, dropDatabase. Any other answers ok 0, code 59 (CommandNotFound),
and is reported on stderr. Filters: equality on `_id` or any dotted field (an array
matches when an element equals the value), and the operators $eq $ne $in $nin $gt
$gte $lt $lte $exists. Update operators: $set (dotted paths; a numeric component
indexes into an existing array, padding it with nulls, and missing sub-documents are
created), $setOnInsert, $unset, $max, $min, $inc; or a replacement document. find
supports projection, sort, skip, limit and singleBatch, and always answers in one batch
(cursor id 0). A document that would exceed 16 MiB fails with code 10334
(BSONObjectTooLarge) and changes nothing; a real MongoDB 5.0 uses code 17419 for an
update that grows a document too far (7.0 and later use 10334), so code under test
should treat both as "too large".

Differences from a real server, on purpose or for simplicity: a retried write (same
lsid and txnNumber) is applied again instead of answering the recorded result, which
is stricter for the code under test; indexes are recorded but not enforced (except
the unique `_id`); there are no transactions, no getMore (all results in the first
batch), no aggregation and no authentication.

Faults, set with the control port (POST /faults with a JSON object, merged):
  down: true closes the listening socket and every client connection, so new
        connections are refused; false listens again on the same port.
  drop_before_write: N   the next N write commands (update/insert/delete) close the
                         connection without being applied.
  drop_after_write: N    the next N write commands are applied, then the connection is
                         closed without a reply.
  delay_ms: M            every command but hello/isMaster/ping waits M ms first.
  duplicate_key: N       the next N write commands fail their first statement with
                         E11000 (code 11000), applying nothing.
GET /stats answers {"commands": {name: n}, "writes_applied": n,
"writes_applied_by_command": {name: n}, "connections_open": n, "faults": {...}};
POST /reset clears data, indexes, faults and stats (and brings the server up).
A write statement counts as applied when it ran without a write error.

Thread-safety: one thread per client connection and per control request; all data,
faults and statistics live behind one lock. A delay is waited outside the lock.
"""

import argparse
import copy
import functools
import datetime
import http.server
import json
import signal
import socket
import struct
import sys
import threading
import time

import bson
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013

CHECKSUM_PRESENT = 1
MORE_TO_COME = 2

MAX_BSON_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48000000
MAX_WRITE_BATCH = 100000

CODEC = CodecOptions(uuid_representation=UuidRepresentation.UNSPECIFIED)

HELLO_NAMES = ("hello", "isMaster", "ismaster")
WRITE_COMMANDS = ("update", "insert", "delete")
FAULT_KEYS = ("down", "drop_before_write", "drop_after_write", "delay_ms", "duplicate_key")

log_file = sys.stderr
log_lock = threading.Lock()


def log(message):
    stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    with log_lock:
        print("%s fake_mongo: %s" % (stamp, message), file=log_file, flush=True)


def loud(message):
    """Logs, and also writes to stderr when the log is elsewhere."""
    log(message)
    if log_file is not sys.stderr:
        print("fake_mongo: " + message, file=sys.stderr, flush=True)


class CommandError(Exception):
    """A command that fails as a whole: {ok: 0, code, codeName, errmsg}."""

    def __init__(self, code, code_name, errmsg):
        super().__init__(errmsg)
        self.code = code
        self.code_name = code_name
        self.errmsg = errmsg


class WriteError(Exception):
    """One write statement that fails: an entry of writeErrors."""

    def __init__(self, code, errmsg):
        super().__init__(errmsg)
        self.code = code
        self.errmsg = errmsg


# ---------------------------------------------------------------------------------
# BSON values: comparison in MongoDB's order of types.


def type_rank(value):
    if isinstance(value, MinKey):
        return 0
    if value is None:
        return 1
    if isinstance(value, bool):
        return 9
    if isinstance(value, (int, float)):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, dict):
        return 4
    if isinstance(value, list):
        return 5
    if isinstance(value, (bytes, bson.binary.Binary)):
        return 6
    if isinstance(value, ObjectId):
        return 7
    if isinstance(value, datetime.datetime):
        return 10
    if isinstance(value, Timestamp):
        return 11
    if isinstance(value, Regex):
        return 12
    if isinstance(value, MaxKey):
        return 100
    return 50


def compare(a, b):
    """-1, 0 or 1, as MongoDB orders BSON values (close enough for a double)."""
    ra, rb = type_rank(a), type_rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra in (0, 1, 100):
        return 0
    if isinstance(a, dict):
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            c = compare(ka, kb) or compare(va, vb)
            if c:
                return c
        return compare(len(a), len(b))
    if isinstance(a, list):
        for va, vb in zip(a, b):
            c = compare(va, vb)
            if c:
                return c
        return compare(len(a), len(b))
    if isinstance(a, Regex):
        a, b = (a.pattern, a.flags), (b.pattern, b.flags)
    elif isinstance(a, Timestamp):
        a, b = (a.time, a.inc), (b.time, b.inc)
    elif isinstance(a, ObjectId):
        a, b = a.binary, b.binary
    elif ra == 6:
        a, b = bytes(a), bytes(b)
    try:
        return (a > b) - (a < b)
    except TypeError:
        return compare(repr(a), repr(b))


def equal(a, b):
    return type_rank(a) == type_rank(b) and compare(a, b) == 0


# ---------------------------------------------------------------------------------
# Paths, filters, updates.


def path_values(value, parts):
    """Every value a dotted path reaches, following arrays as MongoDB does."""
    if not parts:
        return [value]
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        return path_values(value[head], rest) if head in value else []
    if isinstance(value, list):
        found = []
        if head.isdigit() and int(head) < len(value):
            found.extend(path_values(value[int(head)], rest))
        for element in value:
            if isinstance(element, dict):
                found.extend(path_values(element, parts))
        return found
    return []


def candidates(values):
    """The values to test a condition against: each value and each array element."""
    out = []
    for v in values:
        out.append(v)
        if isinstance(v, list):
            out.extend(v)
    return out


def is_operator_doc(value):
    return isinstance(value, dict) and value and all(k.startswith("$") for k in value)


def match_condition(values, condition):
    if not is_operator_doc(condition):
        return any(equal(v, condition) for v in candidates(values))
    for op, arg in condition.items():
        cands = candidates(values)
        if op == "$eq":
            ok = any(equal(v, arg) for v in cands)
        elif op == "$ne":
            ok = not any(equal(v, arg) for v in cands)
        elif op == "$in":
            ok = any(equal(v, a) for v in (cands or [None]) for a in arg)
        elif op == "$nin":
            ok = not any(equal(v, a) for v in (cands or [None]) for a in arg)
        elif op in ("$gt", "$gte", "$lt", "$lte"):
            want = {"$gt": (1,), "$gte": (0, 1), "$lt": (-1,), "$lte": (-1, 0)}[op]
            ok = any(type_rank(v) == type_rank(arg) and compare(v, arg) in want for v in cands)
        elif op == "$exists":
            ok = bool(values) == bool(arg)
        else:
            raise CommandError(
                2, "BadValue", "fake_mongo does not implement the query operator " + op
            )
        if not ok:
            return False
    return True


def matches(doc, query):
    for key, condition in query.items():
        if key == "$and":
            if not all(matches(doc, q) for q in condition):
                return False
        elif key == "$or":
            if not any(matches(doc, q) for q in condition):
                return False
        elif key.startswith("$"):
            raise CommandError(
                2, "BadValue", "fake_mongo does not implement the query operator " + key
            )
        elif not match_condition(path_values(doc, key.split(".")), condition):
            return False
    return True


def walk_to_parent(doc, path, create):
    """The container holding the last component of `path`, and that component.

    With create, missing sub-documents are created and arrays are padded with nulls
    up to a numeric component, as MongoDB's $set does. Returns (None, None) when the
    path does not exist and create is false."""
    parts = path.split(".")
    node = doc
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, dict):
            if part not in node:
                if not create:
                    return None, None
                node[part] = {}
            child = node[part]
        elif isinstance(node, list):
            if not part.isdigit():
                raise WriteError(
                    28, "Cannot create field '%s' in element {%s: [...]}" % (part, parts[i - 1])
                )
            index = int(part)
            if index >= len(node):
                if not create:
                    return None, None
                node.extend([None] * (index - len(node)))
                node.append({})
            child = node[index]
        else:
            raise WriteError(
                28, "Cannot create field '%s' in element {%s: %r}" % (part, parts[i - 1], node)
            )
        if child is None and create:
            # A null on the way cannot hold a field, as on a real server.
            raise WriteError(
                28, "Cannot create field '%s' in element {%s: null}" % (parts[i + 1], part)
            )
        if not isinstance(child, (dict, list)):
            if not create:
                return None, None
            raise WriteError(
                28, "Cannot create field '%s' in element {%s: %r}" % (parts[i + 1], part, child)
            )
        node = child
    last = parts[-1]
    if isinstance(node, list) and not last.isdigit():
        raise WriteError(
            28,
            "Cannot create field '%s' in element {%s: [...]}"
            % (last, parts[-2] if len(parts) > 1 else ""),
        )
    return node, last


def get_path(doc, path):
    parent, last = walk_to_parent(doc, path, create=False)
    if parent is None:
        return False, None
    if isinstance(parent, list):
        index = int(last)
        return (True, parent[index]) if index < len(parent) else (False, None)
    return (last in parent), parent.get(last)


def set_path(doc, path, value):
    if path == "_id" and "_id" in doc and not equal(doc["_id"], value):
        raise WriteError(
            66, "Performing an update on the path '_id' would modify the immutable field '_id'"
        )
    parent, last = walk_to_parent(doc, path, create=True)
    if isinstance(parent, list):
        index = int(last)
        if index >= len(parent):
            parent.extend([None] * (index - len(parent) + 1))
        parent[index] = copy.deepcopy(value)
    else:
        parent[last] = copy.deepcopy(value)


def unset_path(doc, path):
    parent, last = walk_to_parent(doc, path, create=False)
    if parent is None:
        return
    if isinstance(parent, list):
        index = int(last)
        if index < len(parent):
            parent[index] = None  # $unset of an array element leaves a null
    else:
        parent.pop(last, None)


def check_conflicts(update):
    """A path may appear once across all operators, and not inside another one."""
    seen = []
    for fields in update.values():
        if not isinstance(fields, dict):
            continue
        for path in fields:
            for other in seen:
                if path == other or path.startswith(other + ".") or other.startswith(path + "."):
                    raise WriteError(
                        40,
                        "Updating the path '%s' would create a conflict at '%s'"
                        % (path, min(path, other, key=len)),
                    )
            seen.append(path)


UPDATE_OPERATORS = ("$set", "$setOnInsert", "$unset", "$max", "$min", "$inc")


def compare_paths(a, b):
    """MongoDB's order of update paths: component by component, two numeric
    components numerically, any others as strings."""
    for x, y in zip(a.split("."), b.split(".")):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        return -1 if x < y else 1
    return (a.count(".") > b.count(".")) - (a.count(".") < b.count("."))


def apply_update(doc, update, inserting):
    """Applies an update document to doc in place."""
    if isinstance(update, list):
        raise WriteError(9, "fake_mongo does not implement pipeline updates")
    if not any(k.startswith("$") for k in update):
        if "_id" in update and "_id" in doc and not equal(update["_id"], doc["_id"]):
            raise WriteError(66, "the (immutable) field '_id' was found to have been altered")
        keep = doc.get("_id")
        doc.clear()
        if keep is not None:
            doc["_id"] = keep
        for k, v in update.items():
            if k != "_id" or keep is None:
                doc[k] = copy.deepcopy(v)
        return
    check_conflicts(update)
    steps = []
    for op, fields in update.items():
        if op not in UPDATE_OPERATORS:
            raise WriteError(9, "Unknown modifier: %s. fake_mongo does not implement it" % op)
        if not isinstance(fields, dict):
            raise WriteError(
                9,
                "Modifiers operate on fields but we found type %s instead" % type(fields).__name__,
            )
        steps.extend((path, op, value) for path, value in fields.items())
    # As MongoDB 5.0 does, apply the paths of all operators together in path order
    # (lexicographic, numeric components numerically), so new fields are appended in
    # that order whatever the order of the update document.
    steps.sort(key=functools.cmp_to_key(lambda a, b: compare_paths(a[0], b[0])))
    for path, op, value in steps:
        if op == "$set":
            set_path(doc, path, value)
        elif op == "$setOnInsert":
            if inserting:
                set_path(doc, path, value)
        elif op == "$unset":
            unset_path(doc, path)
        elif op in ("$max", "$min"):
            present, current = get_path(doc, path)
            c = compare(value, current) if present else 0
            if not present or (op == "$max" and c > 0) or (op == "$min" and c < 0):
                set_path(doc, path, value)
        elif op == "$inc":
            present, current = get_path(doc, path)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise WriteError(14, "Cannot increment with non-numeric argument")
            if present and (not isinstance(current, (int, float)) or isinstance(current, bool)):
                raise WriteError(14, "Cannot apply $inc to a value of non-numeric type")
            set_path(doc, path, (current if present else 0) + value)
        else:
            raise WriteError(9, "Unknown modifier: %s. fake_mongo does not implement it" % op)


def equality_fields(query, prefix=""):
    """The (path, value) pairs an upsert copies from its filter."""
    out = []
    for key, condition in query.items():
        if key == "$and":
            for q in condition:
                out.extend(equality_fields(q))
        elif key.startswith("$"):
            continue
        elif is_operator_doc(condition):
            if "$eq" in condition:
                out.append((key, condition["$eq"]))
        else:
            out.append((key, condition))
    return out


def id_first(doc):
    if "_id" in doc and next(iter(doc)) != "_id":
        rest = [(k, v) for k, v in doc.items() if k != "_id"]
        identity = doc["_id"]
        doc.clear()
        doc["_id"] = identity
        doc.update(rest)
    return doc


def check_size(doc, inserting):
    """Code 10334 (BSONObjectTooLarge) as the brief of this double asks. Note that a
    real MongoDB 5.0 answers an update that grows a document too far with code 17419
    and this message; servers from 7.0 on use 10334 for both."""
    size = len(bson.encode(doc, codec_options=CODEC))
    if size <= MAX_BSON_SIZE:
        return
    if inserting:
        raise WriteError(
            10334,
            "object to insert too large. size in bytes: %d, max size: %d" % (size, MAX_BSON_SIZE),
        )
    raise WriteError(10334, "Resulting document after update is larger than %d" % MAX_BSON_SIZE)


def project(doc, projection):
    if not projection:
        return doc
    include = [k for k, v in projection.items() if k != "_id" and v]
    exclude = [k for k, v in projection.items() if k != "_id" and not v]
    if include and exclude:
        raise CommandError(
            31254, "Location31254", "Cannot do exclusion on field in inclusion projection"
        )
    keep_id = bool(projection.get("_id", True))
    if include:
        out = {}
        if keep_id and "_id" in doc:
            out["_id"] = doc["_id"]
        for path in include:
            present, value = get_path(doc, path)
            if present:
                set_path(out, path, value)
        return out
    out = copy.deepcopy(doc)
    for path in exclude:
        unset_path(out, path)
    if not keep_id:
        out.pop("_id", None)
    return out


# ---------------------------------------------------------------------------------
# The state: data, indexes, faults, statistics.


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset_locked()

    def reset_locked(self):
        self.databases = {}  # name -> {collection -> {"docs": {key: doc}, "indexes": [spec]}}
        self.faults = {
            "down": False,
            "drop_before_write": 0,
            "drop_after_write": 0,
            "delay_ms": 0,
            "duplicate_key": 0,
        }
        self.commands = {}
        self.writes_applied = 0
        self.writes_applied_by_command = {}

    def collection(self, db, name, create):
        colls = self.databases.get(db)
        if colls is None:
            if not create:
                return None
            colls = self.databases[db] = {}
        coll = colls.get(name)
        if coll is None and create:
            coll = colls[name] = {
                "docs": {},
                "indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}],
            }
        return coll

    def count_applied(self, command, n):
        self.writes_applied += n
        self.writes_applied_by_command[command] = self.writes_applied_by_command.get(command, 0) + n


def id_key(value):
    """A hashable key for an _id with MongoDB's equality (1 == 1.0, true != 1)."""
    rank = type_rank(value)
    if rank == 2:
        return (
            2,
            float(value) if isinstance(value, float) and not value.is_integer() else int(value),
        )
    if isinstance(value, (dict, list)):
        return (rank, bson.encode({"v": value}, codec_options=CODEC))
    if rank == 6:
        return (6, bytes(value), getattr(value, "subtype", 0))
    if isinstance(value, datetime.datetime):
        return (rank, value.replace(tzinfo=None))
    return (rank, value)


# ---------------------------------------------------------------------------------
# Commands.


class Server:
    def __init__(self, port, verbose_log):
        self.state = State()
        self.port = port
        self.verbose = verbose_log
        self.listener = None
        self.accept_thread = None
        self.connections = set()  # Connection objects, under state.lock
        self.next_connection_id = 1
        self.request_id = 0
        self.up_lock = threading.Lock()  # serialises down/up transitions

    # -- listening ------------------------------------------------------------

    def listen(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self.listener = sock
        self.accept_thread = threading.Thread(target=self.accept_loop, args=(sock,), daemon=True)
        self.accept_thread.start()

    def accept_loop(self, sock):
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return  # the listener was shut down
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.state.lock:
                if self.state.faults["down"]:
                    client.close()
                    continue
                connection = Connection(self, client, self.next_connection_id)
                self.next_connection_id += 1
                self.connections.add(connection)
            threading.Thread(target=connection.run, daemon=True).start()

    def go_down(self):
        with self.up_lock:
            with self.state.lock:
                self.state.faults["down"] = True
                listener, self.listener = self.listener, None
                connections = list(self.connections)
                self.connections.clear()  # counted closed now, not when their threads end
            if listener is not None:
                try:
                    listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
                except OSError:
                    pass
                listener.close()
                self.accept_thread.join(5)
            for connection in connections:
                connection.abort()
            log("down: closed the listener and %d connections" % len(connections))

    def go_up(self):
        with self.up_lock:
            with self.state.lock:
                self.state.faults["down"] = False
                if self.listener is not None:
                    return
            deadline = time.monotonic() + 10
            while True:
                try:
                    self.listen()
                    break
                except OSError as e:
                    if time.monotonic() > deadline:
                        loud("cannot listen again on port %d: %s" % (self.port, e))
                        raise
                    time.sleep(0.05)
            log("up: listening again on port %d" % self.port)

    def shutdown(self):
        self.go_down()

    def next_request_id(self):
        with self.state.lock:
            self.request_id += 1
            return self.request_id

    # -- dispatch -------------------------------------------------------------

    def hello_reply(self, request, connection_id):
        reply = {
            "helloOk": True,
            "ismaster": True,
            "isWritablePrimary": True,
            "secondary": False,
            "setName": "rs0",
            "setVersion": 1,
            "hosts": ["127.0.0.1:%d" % self.port],
            "primary": "127.0.0.1:%d" % self.port,
            "me": "127.0.0.1:%d" % self.port,
            "minWireVersion": 0,
            "maxWireVersion": 13,
            "maxBsonObjectSize": MAX_BSON_SIZE,
            "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
            "maxWriteBatchSize": MAX_WRITE_BATCH,
            "localTime": datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None),
            "logicalSessionTimeoutMinutes": 30,
            "connectionId": connection_id,
            "readOnly": False,
            "ok": 1.0,
        }
        if not request.get("helloOk"):
            del reply["helloOk"]
        return reply

    def count_command(self, name):
        with self.state.lock:
            self.state.commands[name] = self.state.commands.get(name, 0) + 1

    def run_command(self, body, connection):
        """Returns (reply document or None, action) where action is None, "drop" (close
        without replying, reply is None) or "drop_after" (close after applying)."""
        if not body:
            raise CommandError(59, "CommandNotFound", "an empty command")
        name = next(iter(body))
        self.count_command(name)
        if name not in HELLO_NAMES and name != "ping":
            with self.state.lock:
                delay = self.state.faults["delay_ms"]
            if delay > 0:
                time.sleep(delay / 1000.0)
        if name in HELLO_NAMES:
            return self.hello_reply(body, connection.connection_id), None
        db = body.get("$db", "admin")
        handler = COMMANDS.get(name)
        if handler is None:
            loud(
                "UNIMPLEMENTED COMMAND %r: fake_mongo does not implement %s (body keys %s)"
                % (name, name, list(body))
            )
            raise CommandError(59, "CommandNotFound", "fake_mongo does not implement " + name)
        if name not in WRITE_COMMANDS:
            with self.state.lock:
                return handler(self.state, db, body), None
        with self.state.lock:
            faults = self.state.faults
            if faults["drop_before_write"] > 0:
                faults["drop_before_write"] -= 1
                log(
                    "fault: drop_before_write on %s (%d left)" % (name, faults["drop_before_write"])
                )
                return None, "drop"
            if faults["duplicate_key"] > 0:
                faults["duplicate_key"] -= 1
                log("fault: duplicate_key on %s (%d left)" % (name, faults["duplicate_key"]))
                reply = {
                    "n": 0,
                    "writeErrors": [
                        {
                            "index": 0,
                            "code": 11000,
                            "errmsg": "E11000 duplicate key error collection: %s.%s index: _id_"
                            " dup key: (injected by fake_mongo)" % (db, body[name]),
                        }
                    ],
                    "ok": 1.0,
                }
                if name == "update":
                    reply["nModified"] = 0
                return reply, None
            reply = handler(self.state, db, body)
            if faults["drop_after_write"] > 0:
                faults["drop_after_write"] -= 1
                log("fault: drop_after_write on %s (%d left)" % (name, faults["drop_after_write"]))
                return None, "drop"
            return reply, None


def statements(body, key):
    docs = body.get(key)
    if not isinstance(docs, list):
        raise CommandError(9, "FailedToParse", "BSON field '%s' is missing or not an array" % key)
    if len(docs) > MAX_WRITE_BATCH:
        raise CommandError(
            10, "InvalidLength", "Write batch sizes must be between 1 and %d" % MAX_WRITE_BATCH
        )
    return docs


def write_reply(n, errors, extra=None):
    reply = {"n": n}
    if extra:
        reply.update(extra)
    if errors:
        reply["writeErrors"] = errors
    reply["ok"] = 1.0
    return reply


def cmd_update(state, db, body):
    coll_name = body["update"]
    ordered = body.get("ordered", True)
    n = 0
    modified = 0
    upserted = []
    errors = []
    for index, statement in enumerate(statements(body, "updates")):
        try:
            query = statement.get("q", {})
            update = statement.get("u", {})
            coll = state.collection(db, coll_name, create=False)
            docs = coll["docs"] if coll else {}
            found = [key for key, doc in docs.items() if matches(doc, query)]
            if not statement.get("multi", False):
                found = found[:1]
            if found:
                changed = []
                for key in found:
                    before = docs[key]
                    after = copy.deepcopy(before)
                    apply_update(after, update, inserting=False)
                    check_size(after, inserting=False)
                    if bson.encode(after, codec_options=CODEC) != bson.encode(
                        before, codec_options=CODEC
                    ):
                        changed.append((key, id_first(after)))
                for key, after in changed:
                    docs[key] = after
                n += len(found)
                modified += len(changed)
            elif statement.get("upsert", False):
                doc = {}
                for path, value in equality_fields(query):
                    set_path(doc, path, value)
                apply_update(doc, update, inserting=True)
                if "_id" not in doc:
                    doc["_id"] = ObjectId()
                id_first(doc)
                check_size(doc, inserting=False)
                coll = state.collection(db, coll_name, create=True)
                key = id_key(doc["_id"])
                if key in coll["docs"]:
                    raise WriteError(
                        11000,
                        "E11000 duplicate key error collection: %s.%s index: _id_"
                        % (db, coll_name),
                    )
                coll["docs"][key] = doc
                n += 1
                upserted.append({"index": index, "_id": doc["_id"]})
            state.count_applied("update", 1)
        except WriteError as e:
            errors.append({"index": index, "code": e.code, "errmsg": e.errmsg})
            if ordered:
                break
    extra = {"nModified": modified}
    if upserted:
        extra["upserted"] = upserted
    return write_reply(n, errors, extra)


def cmd_insert(state, db, body):
    coll_name = body["insert"]
    ordered = body.get("ordered", True)
    n = 0
    errors = []
    for index, doc in enumerate(statements(body, "documents")):
        try:
            doc = copy.deepcopy(doc)
            if "_id" not in doc:
                doc["_id"] = ObjectId()
            id_first(doc)
            check_size(doc, inserting=True)
            coll = state.collection(db, coll_name, create=True)
            key = id_key(doc["_id"])
            if key in coll["docs"]:
                raise WriteError(
                    11000,
                    "E11000 duplicate key error collection: %s.%s index: _id_ dup key: { _id: %r }"
                    % (db, coll_name, doc["_id"]),
                )
            coll["docs"][key] = doc
            n += 1
            state.count_applied("insert", 1)
        except WriteError as e:
            errors.append({"index": index, "code": e.code, "errmsg": e.errmsg})
            if ordered:
                break
    return write_reply(n, errors)


def cmd_delete(state, db, body):
    coll_name = body["delete"]
    ordered = body.get("ordered", True)
    n = 0
    errors = []
    for index, statement in enumerate(statements(body, "deletes")):
        try:
            coll = state.collection(db, coll_name, create=False)
            docs = coll["docs"] if coll else {}
            found = [key for key, doc in docs.items() if matches(doc, statement.get("q", {}))]
            if statement.get("limit", 0) == 1:
                found = found[:1]
            for key in found:
                del docs[key]
            n += len(found)
            state.count_applied("delete", 1)
        except WriteError as e:
            errors.append({"index": index, "code": e.code, "errmsg": e.errmsg})
            if ordered:
                break
    return write_reply(n, errors)


def cmd_find(state, db, body):
    coll_name = body["find"]
    coll = state.collection(db, coll_name, create=False)
    docs = list(coll["docs"].values()) if coll else []
    query = body.get("filter", {})
    found = [doc for doc in docs if matches(doc, query)]
    sort = body.get("sort") or {}
    for field, direction in reversed(list(sort.items())):

        def sort_key(doc, field=field):
            values = path_values(doc, field.split("."))
            return _Ordered(values[0] if values else None)

        found.sort(key=sort_key, reverse=(direction == -1))
    skip = body.get("skip", 0) or 0
    limit = abs(body.get("limit", 0) or 0)
    found = found[skip:]
    if limit:
        found = found[:limit]
    projection = body.get("projection")
    batch = [project(copy.deepcopy(doc), projection) for doc in found]
    return {
        "cursor": {"firstBatch": batch, "id": Int64(0), "ns": "%s.%s" % (db, coll_name)},
        "ok": 1.0,
    }


class _Ordered:
    def __init__(self, value):
        self.value = value

    def __lt__(self, other):
        return compare(self.value, other.value) < 0


def cmd_create_indexes(state, db, body):
    coll_name = body["createIndexes"]
    existed = state.collection(db, coll_name, create=False) is not None
    coll = state.collection(db, coll_name, create=True)
    before = len(coll["indexes"])
    for spec in body.get("indexes", []):
        if "key" not in spec or "name" not in spec:
            raise CommandError(9, "FailedToParse", "an index specification needs 'key' and 'name'")
        same_name = [i for i in coll["indexes"] if i["name"] == spec["name"]]
        if same_name:
            if not equal(same_name[0]["key"], spec["key"]):
                raise CommandError(
                    86,
                    "IndexKeySpecsConflict",
                    "An existing index has the same name as the requested index",
                )
            continue
        recorded = {"v": 2, "key": copy.deepcopy(spec["key"]), "name": spec["name"]}
        recorded.update((k, copy.deepcopy(v)) for k, v in spec.items() if k not in recorded)
        coll["indexes"].append(recorded)
    reply = {
        "numIndexesBefore": before,
        "numIndexesAfter": len(coll["indexes"]),
        "createdCollectionAutomatically": not existed,
        "ok": 1.0,
    }
    if before == len(coll["indexes"]):
        reply["note"] = "all indexes already exist"
    return reply


def cmd_list_indexes(state, db, body):
    coll_name = body["listIndexes"]
    coll = state.collection(db, coll_name, create=False)
    if coll is None:
        raise CommandError(26, "NamespaceNotFound", "ns does not exist: %s.%s" % (db, coll_name))
    return {
        "cursor": {
            "firstBatch": copy.deepcopy(coll["indexes"]),
            "id": Int64(0),
            "ns": "%s.%s" % (db, coll_name),
        },
        "ok": 1.0,
    }


def cmd_list_collections(state, db, body):
    names = sorted(state.databases.get(db, {}))
    query = body.get("filter", {})
    batch = []
    for name in names:
        info = {
            "name": name,
            "type": "collection",
            "options": {},
            "info": {"readOnly": False},
            "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"},
        }
        if matches(info, query):
            batch.append({"name": name} if body.get("nameOnly") else info)
    return {
        "cursor": {"firstBatch": batch, "id": Int64(0), "ns": "%s.$cmd.listCollections" % db},
        "ok": 1.0,
    }


def cmd_create(state, db, body):
    name = body["create"]
    if state.collection(db, name, create=False) is not None:
        raise CommandError(48, "NamespaceExists", "Collection %s.%s already exists." % (db, name))
    state.collection(db, name, create=True)
    return {"ok": 1.0}


def cmd_drop(state, db, body):
    name = body["drop"]
    colls = state.databases.get(db, {})
    if name not in colls:
        raise CommandError(26, "NamespaceNotFound", "ns not found")
    indexes = len(colls[name]["indexes"])
    del colls[name]
    return {"nIndexesWas": indexes, "ns": "%s.%s" % (db, name), "ok": 1.0}


def cmd_drop_database(state, db, body):
    state.databases.pop(db, None)
    return {"dropped": db, "ok": 1.0}


def cmd_build_info(state, db, body):
    return {
        "version": "5.0.0",
        "gitVersion": "fake_mongo",
        "versionArray": [5, 0, 0, 0],
        "bits": 64,
        "maxBsonObjectSize": MAX_BSON_SIZE,
        "ok": 1.0,
    }


def cmd_ok(state, db, body):
    return {"ok": 1.0}


def cmd_kill_cursors(state, db, body):
    return {
        "cursorsKilled": [],
        "cursorsNotFound": body.get("cursors", []),
        "cursorsAlive": [],
        "cursorsUnknown": [],
        "ok": 1.0,
    }


COMMANDS = {
    "ping": cmd_ok,
    "buildInfo": cmd_build_info,
    "buildinfo": cmd_build_info,
    "endSessions": cmd_ok,
    "killCursors": cmd_kill_cursors,
    "create": cmd_create,
    "createIndexes": cmd_create_indexes,
    "listIndexes": cmd_list_indexes,
    "listCollections": cmd_list_collections,
    "update": cmd_update,
    "insert": cmd_insert,
    "delete": cmd_delete,
    "find": cmd_find,
    "drop": cmd_drop,
    "dropDatabase": cmd_drop_database,
}


# ---------------------------------------------------------------------------------
# One client connection.


def read_cstring(data, offset):
    end = data.index(b"\x00", offset)
    return data[offset:end].decode("utf-8"), end + 1


def bson_length(data, offset):
    return struct.unpack_from("<i", data, offset)[0]


class ProtocolError(Exception):
    pass


class Connection:
    def __init__(self, server, sock, connection_id):
        self.server = server
        self.sock = sock
        self.connection_id = connection_id
        self.closed = False
        self.close_lock = threading.Lock()

    def abort(self):
        """Closes the connection from another thread (down) or this one (a fault)."""
        with self.close_lock:
            if self.closed:
                return
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    def recv_exact(self, size):
        chunks = []
        while size > 0:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def send(self, op_code, response_to, payload):
        header = struct.pack(
            "<iiii", 16 + len(payload), self.server.next_request_id(), response_to, op_code
        )
        self.sock.sendall(header + payload)

    def run(self):
        try:
            while True:
                header = self.recv_exact(16)
                length, request_id, _, op_code = struct.unpack("<iiii", header)
                if length < 16 or length > MAX_MESSAGE_SIZE + 16 * 1024:
                    raise ProtocolError("a message of %d bytes" % length)
                data = self.recv_exact(length - 16)
                if op_code == OP_QUERY:
                    self.handle_query(request_id, data)
                elif op_code == OP_MSG:
                    if not self.handle_msg(request_id, data):
                        break
                else:
                    raise ProtocolError("opcode %d is not implemented" % op_code)
        except (EOFError, OSError):
            pass
        except ProtocolError as e:
            loud("connection %d: protocol error: %s" % (self.connection_id, e))
        except Exception as e:  # a bug in the double: say so loudly, drop the client
            loud("connection %d: internal error: %r" % (self.connection_id, e))
            import traceback

            traceback.print_exc(file=log_file)
        finally:
            self.abort()
            with self.server.state.lock:
                self.server.connections.discard(self)

    def handle_query(self, request_id, data):
        # flags (int32) at 0: nothing in them changes how a hello is answered
        collection, offset = read_cstring(data, 4)
        offset += 8  # numberToSkip, numberToReturn
        size = bson_length(data, offset)
        query = bson.decode(data[offset : offset + size], codec_options=CODEC)
        if "$query" in query:
            query = query["$query"]
        name = next(iter(query), "")
        if self.server.verbose:
            log(
                "connection %d: OP_QUERY %s %s" % (self.connection_id, collection, summarize(query))
            )
        if collection.endswith(".$cmd") and name in HELLO_NAMES:
            self.server.count_command(name)
            reply = self.server.hello_reply(query, self.connection_id)
        else:
            loud("OP_QUERY on %s (%s) is not implemented" % (collection, name))
            reply = {
                "ok": 0.0,
                "code": 352,
                "codeName": "UnsupportedOpQueryCommand",
                "errmsg": "fake_mongo answers OP_QUERY only for hello",
            }
        doc = bson.encode(reply, codec_options=CODEC)
        payload = struct.pack("<iqii", 8, 0, 0, 1) + doc  # AwaitCapable, cursor 0
        self.send(OP_REPLY, request_id, payload)

    def handle_msg(self, request_id, data):
        """Returns false when the connection is to be closed."""
        flags = struct.unpack_from("<I", data, 0)[0]
        end = len(data) - (4 if flags & CHECKSUM_PRESENT else 0)
        offset = 4
        body = None
        sequences = []
        while offset < end:
            kind = data[offset]
            offset += 1
            if kind == 0:
                size = bson_length(data, offset)
                body = bson.decode(data[offset : offset + size], codec_options=CODEC)
                offset += size
            elif kind == 1:
                size = bson_length(data, offset)
                section_end = offset + size
                identifier, pos = read_cstring(data, offset + 4)
                docs = []
                while pos < section_end:
                    doc_size = bson_length(data, pos)
                    docs.append(bson.decode(data[pos : pos + doc_size], codec_options=CODEC))
                    pos += doc_size
                sequences.append((identifier, docs))
                offset = section_end
            else:
                raise ProtocolError("OP_MSG section kind %d" % kind)
        if body is None:
            raise ProtocolError("OP_MSG without a body section")
        for identifier, docs in sequences:
            body.setdefault(identifier, [])
            body[identifier].extend(docs)
        if self.server.verbose:
            seq = ", ".join("%s[%d] as a document sequence" % (i, len(d)) for i, d in sequences)
            log(
                "connection %d: OP_MSG flags=%d %s%s"
                % (self.connection_id, flags, summarize(body), (" + " + seq) if seq else "")
            )
        try:
            reply, action = self.server.run_command(body, self)
        except CommandError as e:
            reply, action = {
                "ok": 0.0,
                "errmsg": e.errmsg,
                "code": e.code,
                "codeName": e.code_name,
            }, None
        if action == "drop":
            return False
        if flags & MORE_TO_COME:
            return True
        if self.server.verbose:
            log("connection %d: reply %s" % (self.connection_id, summarize(reply)))
        payload = struct.pack("<I", 0) + b"\x00" + bson.encode(reply, codec_options=CODEC)
        self.send(OP_MSG, request_id, payload)
        return True


def summarize(doc, limit=600):
    text = repr(doc)
    return text if len(text) <= limit else text[:limit] + "...(%d chars)" % len(text)


# ---------------------------------------------------------------------------------
# The control port.


def make_control_handler(server):
    class ControlHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            if server.verbose:
                log("control: " + fmt % args)

        def answer(self, status, obj):
            data = json.dumps(obj).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def read_json(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw.decode("utf-8")) if raw.strip() else {}

        def stats(self):
            state = server.state
            with state.lock:
                return {
                    "commands": dict(state.commands),
                    "writes_applied": state.writes_applied,
                    "writes_applied_by_command": dict(state.writes_applied_by_command),
                    "connections_open": len(server.connections),
                    "faults": dict(state.faults),
                }

        def do_GET(self):
            if self.path == "/stats":
                self.answer(200, self.stats())
            elif self.path == "/faults":
                self.answer(200, self.stats()["faults"])
            else:
                self.answer(404, {"error": "GET /stats or /faults"})

        def do_POST(self):
            try:
                request = self.read_json()
            except (ValueError, UnicodeDecodeError) as e:
                self.answer(400, {"error": "the body is not JSON: %s" % e})
                return
            if self.path == "/faults":
                if not isinstance(request, dict):
                    self.answer(400, {"error": "POST /faults takes a JSON object"})
                    return
                unknown = [k for k in request if k not in FAULT_KEYS]
                bad = [
                    k
                    for k, v in request.items()
                    if k != "down"
                    and k in FAULT_KEYS
                    and (not isinstance(v, int) or isinstance(v, bool) or v < 0)
                ]
                if unknown or bad or not isinstance(request.get("down", False), bool):
                    self.answer(
                        400,
                        {
                            "error": "unknown keys %s or bad values %s; the keys are %s"
                            % (unknown, bad, list(FAULT_KEYS))
                        },
                    )
                    return
                with server.state.lock:
                    for key, value in request.items():
                        if key != "down":
                            server.state.faults[key] = value
                if "down" in request:
                    if request["down"]:
                        server.go_down()
                    else:
                        server.go_up()
                log("faults now %s" % self.stats()["faults"])
                self.answer(200, self.stats()["faults"])
            elif self.path == "/reset":
                with server.state.lock:
                    was_down = server.state.faults["down"]
                    server.state.reset_locked()
                    server.state.faults["down"] = was_down
                if was_down:
                    server.go_up()
                log("reset")
                self.answer(200, {"reset": True})
            else:
                self.answer(404, {"error": "POST /faults or /reset"})

    return ControlHandler


def main():
    global log_file
    parser = argparse.ArgumentParser(description="A MongoDB test double (see the module comment).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--log", help="append the log here instead of stderr")
    parser.add_argument("--verbose", action="store_true", help="log every message and reply")
    args = parser.parse_args()
    if args.log:
        log_file = open(args.log, "a", encoding="utf-8")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    server = Server(args.port, args.verbose)
    server.listen()
    http.server.ThreadingHTTPServer.daemon_threads = True
    control = http.server.ThreadingHTTPServer(
        ("127.0.0.1", args.control_port), make_control_handler(server)
    )
    control_thread = threading.Thread(
        target=control.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    control_thread.start()

    log("listening: mongo=%d control=%d" % (server.port, control.server_address[1]))
    print("fake_mongo mongo=%d control=%d" % (server.port, control.server_address[1]), flush=True)

    while not stop.wait(0.5):
        pass
    log("stopping")
    control.shutdown()
    control.server_close()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
