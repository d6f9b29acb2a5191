"""The shortest program that runs a dossier through onestop.

    python examples/quickstart.py

It uses the process library shipped with onestop (processes/standard.bpmn and
processes/catalog.json) and a SQLite file in the current folder.
"""

from onestop import Channel, Engine, Officer

engine = Engine("sqlite:///quickstart.db")

# Officers and their roles per agency (agency codes come from the catalogue).
engine.add_officer(Officer("tn.an", "Trần Ngọc An", {"AN-BINH-MC": ["receiving_officer"]}))
engine.add_officer(Officer("lv.binh", "Lê Văn Bình", {"AN-BINH-KT": ["specialist"]}))
engine.add_officer(Officer("pq.cuong", "Phạm Quốc Cường", {"AN-BINH-KT": ["leader"]}))

# A citizen hands in a dossier at the desk.
dossier = engine.receive(
    "2.000575",  # Đăng ký thành lập hộ kinh doanh
    applicant={"name": "Nguyễn Thị Hoa", "id_number": "079190001234"},
    components=["giay-de-nghi"],
    channel=Channel.IN_PERSON,
    officer="tn.an",
)
print("received", dossier.code, dossier.status.label_vi)

# Each officer works their inbox until the result is returned.
answers = {"Task_CheckDossier": {"outcome": "accept"}, "Task_Examine": {"verdict": "approve"}}
while dossier.open_tasks:
    for officer in ("tn.an", "lv.binh", "pq.cuong"):
        for task in engine.inbox(officer):
            dossier = engine.complete(task.id, officer, answers.get(task.step, {}))
            print(f"{officer:9} did {task.name!r}: now {dossier.status.label_vi}")

for event in engine.history(dossier.code):
    print(event.at.strftime("%H:%M"), event.kind.value, event.step or "", event.actor or "")
engine.close()
