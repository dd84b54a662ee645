#!/usr/bin/python3
"""Checks that fake_mongo.py speaks MongoDB well enough for real pymongo.

Run by CTest as mongo.double_speaks_pymongo with Debian's /usr/bin/python3 (it needs
python3-pymongo). Each test starts from a reset double; one double serves the whole
run. Faults are set through the control port as the C++ FakeMongo does.

Thread-safety: single-threaded, apart from the double running as a child process.
"""

import datetime
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.request

import pymongo
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_mongo.py")
START_TIMEOUT_S = 10


def wait_for(predicate, timeout_s=5.0, what="a condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout_s, what))
        time.sleep(0.01)


class Double:
    def __init__(self):
        self.process = subprocess.Popen(
            ["/usr/bin/python3", SCRIPT],
            stdout=subprocess.PIPE,
            stderr=sys.stderr,
            text=True,
        )
        os.set_blocking(self.process.stdout.fileno(), False)
        deadline = time.monotonic() + START_TIMEOUT_S
        line = ""
        while not line.endswith("\n"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("fake_mongo did not print its ports: %r" % line)
            line += self.process.stdout.readline() or ""
            time.sleep(0.01)
        words = dict(part.split("=") for part in line.split()[1:])
        self.port = int(words["mongo"])
        self.control_port = int(words["control"])

    def uri(self, **options):
        query = {
            "replicaSet": "rs0",
            "serverSelectionTimeoutMS": "2000",
            "connectTimeoutMS": "2000",
            "socketTimeoutMS": "5000",
        }
        query.update({k: str(v) for k, v in options.items()})
        return "mongodb://127.0.0.1:%d/?%s" % (
            self.port,
            "&".join("%s=%s" % kv for kv in query.items()),
        )

    def control(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.control_port, path), data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read().decode())

    def faults(self, **faults):
        return self.control("POST", "/faults", faults)

    def stats(self):
        return self.control("GET", "/stats")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                return None
        return self.process.returncode


class FakeMongoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.double = Double()

    @classmethod
    def tearDownClass(cls):
        code = cls.double.stop()
        if code != 0:
            raise AssertionError("fake_mongo exited with %r on SIGTERM (want 0)" % code)

    def setUp(self):
        self.double.control("POST", "/reset", {})
        self.client = pymongo.MongoClient(self.double.uri())
        self.coll = self.client.ticketaid.answers

    def tearDown(self):
        self.client.close()

    def test_handshake_ping_build_info(self):
        self.assertEqual(self.client.admin.command("ping")["ok"], 1.0)
        self.assertEqual(self.client.server_info()["version"], "5.0.0")
        hello = self.client.admin.command("isMaster")
        self.assertEqual(hello["setName"], "rs0")
        self.assertTrue(hello["ismaster"])
        self.assertNotIn("topologyVersion", hello)
        self.assertEqual(hello["hosts"], ["127.0.0.1:%d" % self.double.port])

    def test_upsert_positioned_set_and_replay(self):
        result = self.coll.update_one(
            {"_id": "t1"},
            {"$setOnInsert": {"messages": []}, "$set": {"state": "open"}},
            upsert=True,
        )
        self.assertEqual(result.upserted_id, "t1")
        update = {"$set": {"messages.0": {"text": "hi"}, "messages.2": {"text": "third"}}}
        self.assertEqual(self.coll.update_one({"_id": "t1"}, update, upsert=True).modified_count, 1)
        expected = {
            "_id": "t1",
            "messages": [{"text": "hi"}, None, {"text": "third"}],
            "state": "open",
        }
        self.assertEqual(self.coll.find_one({"_id": "t1"}), expected)
        # A replay changes nothing: matched, not modified.
        replay = self.coll.update_one({"_id": "t1"}, update, upsert=True)
        self.assertEqual(
            (replay.matched_count, replay.modified_count, replay.upserted_id), (1, 0, None)
        )
        self.assertEqual(self.coll.find_one({"_id": "t1"}), expected)
        # $setOnInsert does nothing on an update; a dotted path creates sub-documents.
        self.coll.update_one(
            {"_id": "t1"},
            {"$setOnInsert": {"messages": []}, "$set": {"meta.by.who": "x"}},
            upsert=True,
        )
        self.assertEqual(self.coll.find_one({"_id": "t1"})["messages"][0], {"text": "hi"})
        self.assertEqual(self.coll.find_one({"_id": "t1"})["meta"], {"by": {"who": "x"}})
        # The upsert copies the filter's equality fields, _id first.
        self.coll.update_one({"ticket": 7, "kind.name": "a"}, {"$set": {"v": 1}}, upsert=True)
        doc = self.coll.find_one({"ticket": 7})
        self.assertEqual(list(doc), ["_id", "ticket", "kind", "v"])
        self.assertEqual(doc["kind"], {"name": "a"})

    def test_new_fields_are_added_in_path_order_like_mongodb_5(self):
        self.coll.insert_one({"_id": 1, "z": 0})
        self.coll.update_one({"_id": 1}, {"$set": {"b": 1, "a.10": 1, "a.9": 1}, "$max": {"c": 1}})
        doc = self.coll.find_one({"_id": 1})
        self.assertEqual(list(doc), ["_id", "z", "a", "b", "c"])
        self.assertEqual(list(doc["a"]), ["9", "10"])
        with self.assertRaises(WriteError) as caught:
            self.coll.update_one({"_id": 1}, {"$push": {"list": 1}})
        self.assertEqual(caught.exception.code, 9)

    def test_conflicting_operators_fail_like_mongodb(self):
        with self.assertRaises(WriteError) as caught:
            self.coll.update_one(
                {"_id": 1},
                {"$setOnInsert": {"messages": []}, "$set": {"messages.0": 1}},
                upsert=True,
            )
        self.assertEqual(caught.exception.code, 40)
        self.assertIsNone(self.coll.find_one({"_id": 1}))

    def test_max_numbers_and_dates(self):
        early, late = datetime.datetime(2024, 1, 1), datetime.datetime(2024, 6, 1)
        self.coll.update_one({"_id": 1}, {"$max": {"seq": 5, "at": late}}, upsert=True)
        self.coll.update_one({"_id": 1}, {"$max": {"seq": 3, "at": early}})
        self.assertEqual(self.coll.find_one({"_id": 1}), {"_id": 1, "seq": 5, "at": late})
        self.coll.update_one({"_id": 1}, {"$max": {"seq": 9.5}, "$unset": {"at": ""}})
        self.assertEqual(self.coll.find_one({"_id": 1}), {"_id": 1, "seq": 9.5})

    def test_insert_delete_find(self):
        self.coll.insert_many(
            [{"_id": i, "n": i % 3, "tags": ["a", "b%d" % i], "sub": {"k": i}} for i in range(6)]
        )
        self.assertEqual([d["_id"] for d in self.coll.find({"n": 1})], [1, 4])
        self.assertEqual([d["_id"] for d in self.coll.find({"sub.k": 2})], [2])
        self.assertEqual([d["_id"] for d in self.coll.find({"tags": "b3"})], [3])
        self.assertEqual([d["_id"] for d in self.coll.find({"_id": {"$in": [5, 0, 9]}})], [0, 5])
        self.assertEqual([d["_id"] for d in self.coll.find({}).sort("_id", -1).limit(2)], [5, 4])
        self.assertEqual(self.coll.find_one({"_id": 2}, {"sub": 1}), {"_id": 2, "sub": {"k": 2}})
        self.assertEqual(self.coll.find_one({"_id": 2}, {"_id": 0, "tags": 0, "sub": 0}), {"n": 2})
        with self.assertRaises(DuplicateKeyError):
            self.coll.insert_one({"_id": 3})
        self.assertEqual(self.coll.delete_one({"n": 0}).deleted_count, 1)
        self.assertEqual(self.coll.delete_many({"n": 1}).deleted_count, 2)
        self.assertEqual([d["_id"] for d in self.coll.find()], [2, 3, 5])
        self.client.drop_database("ticketaid")
        self.assertEqual(list(self.coll.find()), [])

    def test_indexes(self):
        self.assertEqual(
            self.coll.create_index([("ticket", 1), ("at", -1)], name="ticket_at"), "ticket_at"
        )
        self.coll.create_index("ticket", unique=True)
        names = [i["name"] for i in self.coll.list_indexes()]
        self.assertEqual(names, ["_id_", "ticket_at", "ticket_1"])
        info = self.coll.index_information()
        self.assertEqual(info["ticket_at"]["key"], [("ticket", 1), ("at", -1)])
        self.assertTrue(info["ticket_1"]["unique"])

    def test_unimplemented_command(self):
        with self.assertRaises(OperationFailure) as caught:
            self.client.ticketaid.command("collStats", "answers")
        self.assertEqual(caught.exception.code, 59)
        self.assertIn("fake_mongo does not implement collStats", str(caught.exception))

    def test_document_limit(self):
        big = "x" * (9 * 1024 * 1024)
        self.coll.update_one({"_id": 1}, {"$set": {"a": big}}, upsert=True)
        with self.assertRaises(WriteError) as caught:
            self.coll.update_one({"_id": 1}, {"$set": {"b": big}})
        self.assertEqual(caught.exception.code, 10334)
        self.assertEqual(list(self.coll.find_one({"_id": 1})), ["_id", "a"])

    def test_down_and_up_on_the_same_port(self):
        self.coll.insert_one({"_id": 1})
        self.double.faults(down=True)
        self.assertEqual(self.double.stats()["connections_open"], 0)
        short = pymongo.MongoClient(self.double.uri(serverSelectionTimeoutMS=300))
        with self.assertRaises((ServerSelectionTimeoutError, AutoReconnect)):
            short.ticketaid.answers.insert_one({"_id": 2})
        short.close()
        self.double.faults(down=False)
        self.coll.insert_one({"_id": 3})
        self.assertEqual([d["_id"] for d in self.coll.find()], [1, 3])

    def test_drop_before_write_is_retried_once(self):
        self.coll.find_one({})  # connect first
        self.double.faults(drop_before_write=1)
        self.coll.insert_one({"_id": 1})  # retryable: the retry succeeds
        self.assertEqual(self.double.stats()["writes_applied"], 1)
        self.double.faults(drop_before_write=2)
        with self.assertRaises(AutoReconnect):
            self.coll.insert_one({"_id": 2})
        self.assertIsNone(self.coll.find_one({"_id": 2}))
        stats = self.double.stats()
        self.assertEqual((stats["faults"]["drop_before_write"], stats["writes_applied"]), (0, 1))

    def test_drop_after_write_applies_it(self):
        self.double.faults(drop_after_write=2)
        with self.assertRaises(AutoReconnect):
            self.coll.update_one({"_id": 1}, {"$max": {"seq": 1}}, upsert=True)
        self.assertEqual(self.coll.find_one({"_id": 1}), {"_id": 1, "seq": 1})
        self.assertEqual(self.double.stats()["writes_applied"], 2)  # the retry applied it again

    def test_delay(self):
        self.double.faults(delay_ms=400)
        slow = pymongo.MongoClient(self.double.uri(socketTimeoutMS=100, retryWrites="false"))
        self.assertEqual(slow.admin.command("ping")["ok"], 1.0)  # ping is never delayed
        with self.assertRaises(AutoReconnect):
            slow.ticketaid.answers.insert_one({"_id": 1})
        slow.close()
        self.double.faults(delay_ms=0)
        wait_for(lambda: self.coll.find_one({"_id": 1}), what="the delayed insert to be applied")
        started = time.monotonic()
        self.coll.insert_one({"_id": 2})
        self.assertLess(time.monotonic() - started, 0.4)

    def test_duplicate_key(self):
        self.double.faults(duplicate_key=1)
        with self.assertRaises(BulkWriteError) as caught:
            self.coll.insert_many([{"_id": 1}, {"_id": 2}])
        self.assertEqual(caught.exception.details["writeErrors"][0]["code"], 11000)
        self.assertEqual(list(self.coll.find()), [])
        self.coll.insert_many([{"_id": 1}, {"_id": 2}])
        self.assertEqual(self.double.stats()["faults"]["duplicate_key"], 0)

    def test_stats_and_bad_faults(self):
        self.coll.insert_one({"_id": 1})
        stats = self.double.stats()
        self.assertEqual(stats["commands"]["insert"], 1)
        self.assertEqual(stats["writes_applied_by_command"], {"insert": 1})
        self.assertGreaterEqual(stats["connections_open"], 1)
        with self.assertRaises(urllib.error.HTTPError) as caught:
            self.double.faults(explode=1)
        self.assertEqual(caught.exception.code, 400)


if __name__ == "__main__":
    unittest.main(verbosity=2)
