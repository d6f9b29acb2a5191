"""The procedure catalogue as a data format: the shipped procedures, the JSON Schema and
the Python validator agreeing on bad entries, regime overrides and their effect."""

from __future__ import annotations

import copy
import json
import shutil
import unicodedata
from datetime import datetime, time
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from onestop import VIETNAM_TZ, CatalogError, DossierStatus, ManualClock, load_catalog
from onestop.catalog import Fee, parse_catalog
from onestop.duration import Duration
from onestop.library import load_library
from onestop.sla import (
    Regime,
    check_regime_overrides,
    effective_regime,
    load_regimes,
    parse_regime_field,
)

from .conftest import STAFF

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
SCHEMA = json.loads((PROCESSES / "catalog.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)

# The procedures of the five internal-procedure tables (the "# procedure=..." comment line
# of each CSV in the shared data/internal-procedures/ folder), copied here so the tests do
# not read files outside the repository.
CSV_PROCEDURES = {"2.000815", "1.009994", "2.000575", "1.001193", "2.000488"}


def shipped() -> dict:
    return json.loads((PROCESSES / "catalog.json").read_text(encoding="utf-8"))


# -- the shipped catalogue ---------------------------------------------------------------
def test_shipped_catalogue_has_at_least_ten_procedures_across_six_fields():
    catalog = load_catalog(PROCESSES / "catalog.json")
    assert len(catalog.procedures) >= 10
    assert len({p.field for p in catalog.procedures.values()}) >= 6
    assert CSV_PROCEDURES <= set(catalog.procedures)
    fields = {p.field for p in catalog.procedures.values()}
    assert {"Hộ tịch", "Chứng thực", "Đất đai", "Bảo trợ xã hội"} <= fields


def test_the_five_table_procedures_keep_their_process_and_agency():
    catalog = load_catalog(PROCESSES / "catalog.json")
    expected = {"2.000815": ("standard", "AN-BINH-UB"),
                "1.009994": ("standard", "AN-BINH-KT"),
                "2.000575": ("standard", "AN-BINH-KT"),
                "1.001193": ("standard", "AN-BINH-TP"),
                "2.000488": ("interagency", "SO-TU-PHAP")}
    for code, (process, agency) in expected.items():
        proc = catalog.procedure(code)
        assert (proc.process, proc.agency) == (process, agency)
    assert list(catalog.procedures)[:5] == list(expected)       # other tests edit by index


def test_shipped_library_loads_and_its_overrides_name_known_regimes():
    library = load_library()
    assert library.regimes is not None
    check_regime_overrides(library.catalog, library.regimes)


def test_shipped_catalogue_validates_against_the_schema_entry_by_entry():
    Draft202012Validator.check_schema(SCHEMA)
    data = shipped()
    assert data["$schema"] == "./catalog.schema.json"
    for index, entry in enumerate(data["procedures"]):
        errors = list(_entry_errors("procedure", entry))
        assert not errors, f"procedures[{index}] ({entry.get('code')}): {errors[0].message}"
    for index, entry in enumerate(data["agencies"]):
        assert not list(_entry_errors("agency", entry)), f"agencies[{index}]"
    VALIDATOR.validate(data)


def _entry_errors(definition: str, entry: dict):
    schema = {"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"],
              "$ref": f"#/$defs/{definition}"}
    return Draft202012Validator(schema).iter_errors(entry)


def test_fees_reusable_components_desks_and_agency_kinds_are_exposed():
    catalog = load_catalog(PROCESSES / "catalog.json")
    copy_cert = catalog.procedure("2.000815")
    assert copy_cert.fees[0] == Fee("Phí chứng thực bản sao từ bản chính", 2000,
                                    copy_cert.fees[0].note)
    assert copy_cert.fee_total == 2000 and copy_cert.boundary_free and not copy_cert.desks
    transfer = catalog.procedure("1.004227")
    assert transfer.fee_total == sum(f.amount for f in transfer.fees) == 250_000
    assert catalog.procedure("1.001776").fees == () and catalog.procedure("1.001776").fee_total == 0
    marriage = catalog.procedure("1.000894")
    identity = marriage.component("giay-to-tuy-than")
    assert identity is not None and identity.reusable and not identity.must_digitize
    assert not marriage.component("to-khai").reusable          # default false
    assert marriage.desks == ("AN-BINH-MC",)
    assert catalog.agency("AN-BINH-MC").kind == "desk"
    assert catalog.agency("BUU-DIEN-AN-BINH").kind == "postal"
    for proc in catalog.procedures.values():
        for desk in proc.desks:
            assert catalog.agency(desk).kind in (None, "desk")
        assert not (proc.boundary_free and proc.desks)


def test_vietnamese_text_round_trips_exactly(tmp_path):
    data = shipped()
    catalog = load_catalog(PROCESSES / "catalog.json")
    for raw in data["procedures"]:
        proc = catalog.procedure(raw["code"])
        assert (proc.name, proc.field) == (raw["name"], raw["field"])
        assert [c.name for c in proc.components] == [c["name"] for c in raw["components"]]
        assert [(f.name, f.note) for f in proc.fees] == \
            [(f["name"], f.get("note")) for f in raw.get("fees", [])]
    assert catalog.procedure("1.000656").name == "Đăng ký khai tử"
    # No normalisation either way: decomposed text stays decomposed.
    doc = _base()
    decomposed = unicodedata.normalize("NFD", "Đăng ký kết hôn")
    doc["procedures"][0]["name"] = decomposed
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    assert load_catalog(path).procedure("1.000894").name == decomposed != "Đăng ký kết hôn"


# -- bad entries: the validator and the schema agree ---------------------------------------
def _base() -> dict:
    return {
        "$schema": "./catalog.schema.json",
        "schema": "onestop-catalog/1",
        "agencies": [
            {"code": "AN-BINH-MC", "name": "Bộ phận Một cửa UBND xã An Bình", "level": "commune",
             "kind": "desk"},
            {"code": "AN-BINH-TP", "name": "Công chức Tư pháp - Hộ tịch xã An Bình",
             "level": "commune", "kind": "resolver"},
            {"code": "AN-BINH-CA", "name": "Công an xã An Bình", "kind": "consulted"},
            {"code": "AN-BINH-XX", "name": "Tổ một cửa lưu động"},
        ],
        "procedures": [{
            "code": "1.000894", "name": "Đăng ký kết hôn", "field": "Hộ tịch",
            "level": "commune", "agency": "AN-BINH-TP", "process": "standard",
            "legal_time": "same_day", "service_mode": "partial_online",
            "desks": ["AN-BINH-MC", "AN-BINH-XX"], "agencies": {"police": "AN-BINH-CA"},
            "fees": [{"name": "Lệ phí đăng ký kết hôn", "amount": 0, "note": "Miễn"}],
            "regime_overrides": {
                "*": {"apology_lead": "2wh"},
                "ND118-2025": {"transfer_cutoff": "14:00", "supplement_clock": "pause",
                               "max_reappointments": 1},
            },
            "components": [
                {"code": "to-khai", "name": "Tờ khai đăng ký kết hôn"},
                {"code": "giay-to-tuy-than", "name": "Giấy tờ tùy thân",
                 "must_digitize": False, "reusable": True},
            ],
        }],
    }


def _proc(doc: dict) -> dict:
    return doc["procedures"][0]


def _rules(doc: dict, code: str = "ND118-2025") -> dict:
    return _proc(doc)["regime_overrides"][code]


P0 = "procedures[0] (1.000894)"
BAD = [
    # (id, edit, entry, field)
    ("bad code", lambda d: _proc(d).update(code="1.894"), "procedures[0]", "code"),
    ("unknown key", lambda d: _proc(d).update(verify="?"), P0, "verify"),
    ("missing legal_time", lambda d: _proc(d).pop("legal_time"), P0, "legal_time"),
    ("negative fee", lambda d: _proc(d)["fees"][0].update(amount=-1), P0, "fees[0].amount"),
    ("fee as text", lambda d: _proc(d)["fees"][0].update(amount="2000"), P0,
     "fees[0].amount"),
    ("fee as boolean", lambda d: _proc(d)["fees"][0].update(amount=True), P0,
     "fees[0].amount"),
    ("fee with decimals", lambda d: _proc(d)["fees"][0].update(amount=1500.5), P0,
     "fees[0].amount"),
    ("fee without amount", lambda d: _proc(d)["fees"][0].pop("amount"), P0,
     "fees[0].amount"),
    ("fee unknown key", lambda d: _proc(d)["fees"][0].update(currency="VND"), P0,
     "fees[0].currency"),
    ("fee empty name", lambda d: _proc(d)["fees"][0].update(name=" "), P0, "fees[0].name"),
    ("fee empty note", lambda d: _proc(d)["fees"][0].update(note=""), P0, "fees[0].note"),
    ("fees not a list", lambda d: _proc(d).update(fees={"name": "x", "amount": 1}), P0,
     "fees"),
    ("legal_time words", lambda d: _proc(d).update(legal_time="15 ngày"), P0, "legal_time"),
    ("legal_time number", lambda d: _proc(d).update(legal_time=15), P0, "legal_time"),
    ("legal_time bad unit", lambda d: _proc(d).update(legal_time="15wdd"), P0, "legal_time"),
    ("override unknown rule", lambda d: _rules(d, "*").update(cutoff="15:00"), P0,
     "regime_overrides.*.cutoff"),
    ("override cutoff 3pm", lambda d: _rules(d).update(transfer_cutoff="3pm"), P0,
     "regime_overrides.ND118-2025.transfer_cutoff"),
    ("override cutoff seconds", lambda d: _rules(d).update(transfer_cutoff="15:00:00"), P0,
     "regime_overrides.ND118-2025.transfer_cutoff"),
    ("override cutoff 24:00", lambda d: _rules(d).update(transfer_cutoff="24:00"), P0,
     "regime_overrides.ND118-2025.transfer_cutoff"),
    ("override cutoff one digit", lambda d: _rules(d).update(transfer_cutoff="9:00"), P0,
     "regime_overrides.ND118-2025.transfer_cutoff"),
    ("override clock", lambda d: _rules(d).update(supplement_clock="freeze"), P0,
     "regime_overrides.ND118-2025.supplement_clock"),
    ("override negative limit", lambda d: _rules(d).update(max_reappointments=-1), P0,
     "regime_overrides.ND118-2025.max_reappointments"),
    ("override limit as text", lambda d: _rules(d).update(max_reappointments="1"), P0,
     "regime_overrides.ND118-2025.max_reappointments"),
    ("override limit boolean", lambda d: _rules(d).update(max_reappointments=True), P0,
     "regime_overrides.ND118-2025.max_reappointments"),
    ("override apology lead", lambda d: _rules(d, "*").update(apology_lead="1 ngày"), P0,
     "regime_overrides.*.apology_lead"),
    ("override bad regime code", lambda d: _proc(d)["regime_overrides"].update(
        {"ND 118": {}}), P0, "regime_overrides.ND 118"),
    ("override not an object", lambda d: _proc(d)["regime_overrides"].update({"*": "15:00"}),
     P0, "regime_overrides.*"),
    ("overrides not a mapping", lambda d: _proc(d).update(regime_overrides=["*"]), P0,
     "regime_overrides"),
    ("unknown component key", lambda d: _proc(d)["components"][0].update(digitize=True), P0,
     "components[0].digitize"),
    ("component reusable text", lambda d: _proc(d)["components"][1].update(reusable="yes"),
     P0, "components[1].reusable"),
    ("duplicate component", lambda d: _proc(d)["components"].append(
        dict(_proc(d)["components"][0])), P0, "components[2].code"),
    ("boundary_free with desks", lambda d: _proc(d).update(boundary_free=True), P0, "desks"),
    ("empty desks", lambda d: _proc(d).update(desks=[]), P0, "desks"),
    ("desks not a list", lambda d: _proc(d).update(desks="AN-BINH-MC"), P0, "desks"),
    ("duplicate desk", lambda d: _proc(d).update(desks=["AN-BINH-MC", "AN-BINH-MC"]), P0,
     "desks[1]"),
    ("service mode", lambda d: _proc(d).update(service_mode="online"), P0, "service_mode"),
    ("level", lambda d: _proc(d).update(level="huyện"), P0, "level"),
    ("reserved slot", lambda d: _proc(d)["agencies"].update(desk="AN-BINH-MC"), P0,
     "agencies.desk"),
    ("empty name", lambda d: _proc(d).update(name=""), P0, "name"),
    ("agency kind", lambda d: d["agencies"][2].update(kind="police"),
     "agencies[2] (AN-BINH-CA)", "kind"),
    ("agency unknown key", lambda d: d["agencies"][0].update(phone="0123"),
     "agencies[0] (AN-BINH-MC)", "phone"),
    ("top-level key", lambda d: d.update(version=2), None, "version"),
    ("$schema not text", lambda d: d.update({"$schema": 5}), None, "$schema"),
    ("format tag", lambda d: d.update(schema="onestop-catalog/2"), None, "schema"),
]


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_the_base_document_is_valid_for_both():
    catalog = parse_catalog(_base(), source="base.json")
    assert catalog.procedure("1.000894").desks == ("AN-BINH-MC", "AN-BINH-XX")
    assert catalog.agency("AN-BINH-XX").kind is None
    assert not list(VALIDATOR.iter_errors(_base()))


@pytest.mark.parametrize("edit, entry, field", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_entry_is_refused_by_the_loader_and_by_the_schema(tmp_path, edit, entry, field):
    doc = _base()
    edit(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(CatalogError) as refused:
        load_catalog(path)
    error = refused.value
    assert (error.file, error.entry, error.field) == (str(path), entry, field)
    message = str(error)
    assert message.startswith(str(path)) and f"field '{field}'" in message
    if entry:
        assert f"entry {entry}" in message
    assert list(VALIDATOR.iter_errors(json.loads(path.read_text(encoding="utf-8")))), \
        "the JSON Schema accepts what the loader refuses"


def test_a_code_with_a_trailing_newline_is_refused(tmp_path):
    # Patterns are matched whole. The schema's "^...$" agrees under ECMA-262 (what the
    # JSON Schema spec and editors use); the Python jsonschema package evaluates patterns
    # with re.search, where "$" also matches before a final newline, so it alone lets this
    # through (see docs/catalog.md).
    doc = _base()
    _proc(doc)["code"] = "1.000894\n"
    with pytest.raises(CatalogError) as refused:
        load_catalog(_write(tmp_path, doc))
    assert (refused.value.entry, refused.value.field) == ("procedures[0]", "code")


GOOD = [
    ("fee amount written 2000.0", lambda d: _proc(d)["fees"][0].update(amount=2000.0)),
    ("fee without note", lambda d: _proc(d)["fees"][0].pop("note")),
    ("no fees", lambda d: _proc(d).pop("fees")),
    ("kind null", lambda d: d["agencies"][0].update(kind=None)),
    ("legal_time with spaces", lambda d: _proc(d).update(legal_time=" 1.5 wd ")),
    ("calendar days", lambda d: _proc(d).update(legal_time="30d")),
    ("empty override", lambda d: _proc(d)["regime_overrides"].update({"ND61-2018": {}})),
    ("boundary-free without desks", lambda d: (_proc(d).pop("desks"),
                                               _proc(d).update(boundary_free=True))),
    ("desks with boundary_free false", lambda d: _proc(d).update(boundary_free=False)),
    ("no $schema", lambda d: d.pop("$schema")),
    ("no components", lambda d: _proc(d).update(components=[])),
]


@pytest.mark.parametrize("edit", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
def test_valid_variants_are_accepted_by_both(tmp_path, edit):
    doc = _base()
    edit(doc)
    load_catalog(_write(tmp_path, doc))
    assert not list(VALIDATOR.iter_errors(doc))


# Cross-references a JSON Schema cannot express: only the loader refuses these.
CROSS = [
    ("agency not listed", lambda d: _proc(d).update(agency="NOWHERE"), "agency"),
    ("desk not listed", lambda d: _proc(d).update(desks=["NOWHERE"]), "desks[0]"),
    ("desk not a desk agency", lambda d: _proc(d).update(desks=["AN-BINH-TP"]), "desks[0]"),
    ("slot agency not listed", lambda d: _proc(d)["agencies"].update(police="CA-X"),
     "agencies.police"),
    ("component code repeated", lambda d: _proc(d)["components"].append(
        {"code": "to-khai", "name": "Tờ khai khác"}), "components[2].code"),
]


@pytest.mark.parametrize("edit, field", [c[1:] for c in CROSS], ids=[c[0] for c in CROSS])
def test_cross_references_are_checked_by_the_loader(tmp_path, edit, field):
    doc = _base()
    edit(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(CatalogError) as refused:
        load_catalog(path)
    assert (refused.value.entry, refused.value.field) == (P0, field)
    assert not list(VALIDATOR.iter_errors(doc))       # documented limit of the schema


def test_duplicate_procedure_code_names_the_second_entry(tmp_path):
    doc = _base()
    twin = copy.deepcopy(_proc(doc))
    twin["name"] = "Đăng ký kết hôn (bản sao)"
    doc["procedures"].append(twin)
    with pytest.raises(CatalogError) as refused:
        load_catalog(_write(tmp_path, doc))
    assert (refused.value.entry, refused.value.field) == ("procedures[1] (1.000894)", "code")


def test_unknown_regime_in_overrides_is_refused_once_regimes_are_known(tmp_path):
    doc = _base()
    _proc(doc)["regime_overrides"]["ND999-2030"] = {"max_reappointments": 2}
    path = _write(tmp_path, doc)
    catalog = load_catalog(path)                      # the catalogue alone cannot tell
    with pytest.raises(CatalogError) as refused:
        check_regime_overrides(catalog, load_regimes(PROCESSES / "regimes.json"))
    error = refused.value
    assert (error.file, error.entry, error.field) == \
        (str(path), P0, "regime_overrides.ND999-2030")
    assert "ND118-2025" in str(error)                 # says which regimes exist


# -- applying overrides --------------------------------------------------------------------
def _regime(code: str = "ND118-2025") -> Regime:
    return Regime(code, code, None, None, transfer_cutoff=time(15, 0),
                  supplement_clock="pause", max_reappointments=1,
                  apology_lead=Duration.parse("1wd"))


def test_effective_regime_applies_star_then_the_regime_specific_override():
    overrides = {"*": {"transfer_cutoff": time(14, 0), "max_reappointments": 2},
                 "ND118-2025": {"transfer_cutoff": time(16, 30)}}
    current = effective_regime(_regime(), overrides)
    assert (current.code, current.transfer_cutoff, current.max_reappointments) == \
        ("ND118-2025", time(16, 30), 2)
    assert current.supplement_clock == "pause" and current.apology_lead == Duration.parse("1wd")
    older = effective_regime(_regime("ND61-2018"), overrides)
    assert (older.transfer_cutoff, older.max_reappointments) == (time(14, 0), 2)
    base = _regime()
    assert effective_regime(base, {}) is base
    assert effective_regime(base, {"ND61-2018": {"max_reappointments": 0}}) is base
    assert base.transfer_cutoff == time(15, 0)         # the regime itself is untouched


def test_procedure_overrides_are_parsed_once_and_applied_by_the_procedure():
    proc = parse_catalog(_base()).procedure("1.000894")
    assert proc.regime_overrides["ND118-2025"]["transfer_cutoff"] == time(14, 0)
    assert proc.regime_overrides["*"]["apology_lead"] == Duration.parse("2wh")
    current = proc.effective_regime(_regime())
    assert (current.transfer_cutoff, current.apology_lead) == (time(14, 0),
                                                                Duration.parse("2wh"))
    assert proc.effective_regime(_regime("ND61-2018")).transfer_cutoff == time(15, 0)


def test_one_rule_parser_serves_regimes_and_overrides(tmp_path):
    assert parse_regime_field("transfer_cutoff", "07:30") == time(7, 30)
    assert parse_regime_field("max_reappointments", 2.0) == 2
    with pytest.raises(ValueError, match="not a regime rule"):
        parse_regime_field("forms", {})
    data = json.loads((PROCESSES / "regimes.json").read_text(encoding="utf-8"))
    data["regimes"][1]["max_reappointments"] = True
    path = tmp_path / "regimes.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CatalogError) as refused:
        load_regimes(path)
    assert (refused.value.entry, refused.value.field) == ("ND118-2025", "max_reappointments")


# -- the engine counts with the procedure's own cut-off --------------------------------------
def _library_with(tmp_path: Path, procedures: list[dict]) -> Path:
    folder = tmp_path / "lib"
    folder.mkdir()
    for bpmn in PROCESSES.glob("*.bpmn"):
        shutil.copy(bpmn, folder)
    for name in ("regimes.json", "calendars.json"):
        shutil.copy(PROCESSES / name, folder)
    data = shipped()
    data["procedures"] = procedures
    (folder / "catalog.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return folder


def _receive(engine, procedure: str) -> str:
    return engine.receive(procedure, applicant={"name": "Hà"}, components=["giay-de-nghi"],
                          officer="tn.an").code


def _accept(engine, code: str):
    task = engine.dossier(code).open_tasks[0]
    return engine.complete(task.id, "tn.an", {"outcome": "accept"})


def test_procedure_cutoff_override_moves_the_appointment_to_the_next_working_day(
        make_engine, sqlite_url, tmp_path):
    base = next(p for p in shipped()["procedures"] if p["code"] == "2.000575")   # 3wd
    own = dict(base, code="2.000575.cutoff",
               regime_overrides={"*": {"transfer_cutoff": "16:00"},
                                 "ND118-2025": {"transfer_cutoff": "14:00"}})
    folder = _library_with(tmp_path, [base, own])
    clock = ManualClock(datetime(2025, 7, 8, 14, 20, tzinfo=VIETNAM_TZ))   # Tuesday
    engine = make_engine(sqlite_url, library=folder, clock=clock)
    for officer in STAFF:
        engine.add_officer(officer)

    codes = _receive(engine, "2.000575"), _receive(engine, "2.000575.cutoff")
    clock.advance(minutes=10)
    # Both accepted at 14:30: before the regime's 15:00 cut-off, after the override's 14:00
    # (ND118-2025's own override beats the "*" one of 16:00).
    plain, late = (_accept(engine, code) for code in codes)
    assert plain.status is late.status is DossierStatus.RECEIVED
    assert plain.appointment_at == datetime(2025, 7, 11, 14, 30, tzinfo=VIETNAM_TZ)
    # Counted from Wednesday's opening: three working days end on Friday at close.
    assert late.appointment_at == datetime(2025, 7, 11, 17, 0, tzinfo=VIETNAM_TZ)
    assert plain.regime == late.regime == "ND118-2025"      # the stored code is unchanged
