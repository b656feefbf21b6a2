"""The workload file: its documented format, read back, and what a wrong one is told."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import jsonschema
import pytest

from motherboard import workload
from motherboard.workload import BUILTINS, FILE_SCHEMA, Workload, WorkloadError, load


def test_the_file_schema_is_a_json_schema():
    jsonschema.Draft202012Validator.check_schema(FILE_SCHEMA)


def test_the_documented_example_is_a_workload():
    """The module's example file, its comments and elisions taken out, is admitted and
    makes its two listed tasks, then the stream's and the graph's."""
    example = re.search(r"\n(    \{\"schema\".*?\}\})\n", workload.__doc__, re.S).group(1)
    text = re.sub(r"#[^\n]*", "", example).replace('"...", ', "")
    w = Workload.from_json(json.loads(text))
    assert [t.id for t in w.tasks[:2]] == ["a", "b"] and w.tasks[1].after == ("a",)
    assert len(w.tasks) == 2 + 200 + sum(1 for t in w.tasks if t.id.startswith("g"))
    assert w.is_graph


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_built_in_written_to_a_file_reads_back_the_same(tmp_path, name):
    original = load(name)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(original.to_json()))
    # arrivals are written to the microsecond
    assert load(str(path)).tasks == tuple(replace(t, arrival=round(t.arrival, 6))
                                          for t in original.tasks)


BAD = [
    ({"tasks": [{"routine": "p01", "size": 3}]}, "tasks/0: 'id' is a required property"),
    ({"tasks": [{"id": "a", "routine": "p01", "size": "3"}]}, "tasks/0/size: '3' is not of"),
    ({"tasks": [{"id": "a", "routine": "p01", "size": 0}]}, "tasks/0/size: 0 is less than"),
    ({"tasks": [{"id": "a", "routine": "p01", "size": 3, "arival": 1}]}, "'arival' was"),
    ({"stram": {"count": 3}}, "'stram' was unexpected"),
    ({"stream": {"count": 5, "rate": 0}}, "stream/rate: 0 is less than or equal"),
    ({"stream": {"mix": []}}, "stream/mix"),
    ({"graph": {"sizes": [5]}}, "graph/sizes"),
    ({"graph": {"sizes": [5, 1]}}, "give the smaller first"),
    ({"graph": {"fan_in": 0}}, "graph/fan_in: 0 is less than"),
    ({"tasks": [{"id": "a", "routine": "p01", "size": 3, "after": ["a"]}]}, "listed before"),
    ({"tasks": [{"id": "a", "routine": "p01", "size": 3}] * 2}, "appears twice"),
    ({"tasks": []}, "the workload has no tasks"),
]


@pytest.mark.parametrize("doc, named", BAD, ids=[n for _, n in BAD])
def test_a_wrong_file_is_told_where_it_is_wrong(tmp_path, doc, named):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"schema": workload.SCHEMA, **doc}))
    with pytest.raises(WorkloadError) as error:
        load(str(path))
    assert named in str(error.value)


def test_another_schema_or_no_object_is_refused_by_name(tmp_path):
    for doc, named in (({"schema": "metaos.market/1"}, "not 'metaos.market/1'"),
                       ([1, 2], "the file: [1, 2] is not of type 'object'")):
        path = tmp_path / "w.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(WorkloadError, match=re.escape(named)):
            load(str(path))
