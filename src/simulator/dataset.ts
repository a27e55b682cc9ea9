/**
 * Seed data for the simulated site: `demo` is a believable small studio (three projects with
 * sequences, shots, assets, pipeline steps, tasks, versions, published files and people);
 * `empty` has only the script's ApiUser. Everything is deterministic from the seed, and large
 * generated sizes (`shots: 100000`) stay fast because seeding skips validation and events.
 */
import type { SimStore } from "./store.ts";
import type { Link } from "./values.ts";

export interface DatasetOptions {
  dataset: "demo" | "empty";
  /** Shots to generate (demo default 60). */
  shots?: number;
  /** Assets to generate (demo default 40). */
  assets?: number;
  seed: number;
  /** The script the site accepts; its ApiUser record is created here. */
  scriptName: string;
  /** Extra people who may use the password grant. */
  users: Array<{ login: string; name?: string }>;
}

export interface SeededIds {
  scriptUser: Link;
  /** login → HumanUser link. */
  users: Map<string, Link>;
}

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same studio. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** When the demo studio's history starts (fixed, so data does not depend on the clock). */
const EPOCH = Date.UTC(2024, 0, 8, 9, 0, 0);
const HOUR = 3_600_000;

const PROJECTS = [
  { name: "Northern Lights", code: "NLT", sg_type: "Feature" },
  { name: "Tidewater S01", code: "TDW", sg_type: "Episodic" },
  { name: "Glass Harbor", code: "GLH", sg_type: "Commercial" },
];
const PEOPLE = [
  ["Ava", "Moreau", "Comp"],
  ["Ben", "Okafor", "Anim"],
  ["Chloe", "Lindqvist", "Lighting"],
  ["Dev", "Raman", "FX"],
  ["Elena", "Sato", "Model"],
  ["Farid", "Haddad", "Rig"],
  ["Grace", "Kowalski", "Production"],
  ["Hugo", "Brandt", "Layout"],
];
const SHOT_STEPS = [
  ["Layout", "LAY"],
  ["Animation", "ANM"],
  ["FX", "FX"],
  ["Lighting", "LGT"],
  ["Compositing", "CMP"],
];
const ASSET_STEPS = [
  ["Model", "MOD"],
  ["Rig", "RIG"],
  ["Surfacing", "SRF"],
];
const ASSET_NAMES = [
  "Hero",
  "Sidekick",
  "Captain",
  "Lighthouse",
  "Harbor Crane",
  "Fishing Boat",
  "Lantern",
  "Rope Coil",
  "Seagull",
  "Storm Cloud",
  "Cliff Face",
  "Pier",
  "Tavern Int",
  "Tavern Ext",
  "Rowboat",
  "Anchor",
  "Compass",
  "Map Table",
  "Barrel",
  "Crate",
  "Net",
  "Buoy",
  "Tug",
  "Ferry",
  "Dock Worker",
  "Harbor Master",
  "Cat",
  "Dog",
  "Gull Flock",
  "Wave Sim",
  "Rain FX",
  "Fog Bank",
  "Sky Dome",
  "Town Square",
  "Market Stall",
  "Bell Tower",
  "Bridge",
  "Tram",
  "Street Lamp",
  "Bicycle",
];
const ASSET_TYPES = ["Character", "Prop", "Environment", "Vehicle", "FX", "Matte Painting"];
const SHOT_STATUS = ["wtg", "rdy", "ip", "ip", "rev", "fin", "hld"];

/** Fill the store. Returns the links the server needs for auth. */
export function seedDataset(store: SimStore, options: DatasetOptions): SeededIds {
  const random = seededRandom(options.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const has = (type: string, field?: string) => store.schema.hasType(type) && (!field || !!store.schema.field(type, field));
  const only = (type: string, fields: Record<string, unknown>) => {
    // Keep only the fields this schema has, so any schema_read document can be seeded.
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) if (k === "id" || store.schema.field(type, k)) out[k] = v;
    return out;
  };
  const at = (hours: number) => EPOCH + hours * HOUR;

  const scriptUser = has("ApiUser")
    ? store.insert(
        "ApiUser",
        only("ApiUser", { firstname: options.scriptName, lastname: "1.0", description: "Script used by shotgrid-cache", created_at: at(0) }),
      )
    : { type: "ApiUser", id: 1 };
  const scriptLink: Link = { type: "ApiUser", id: scriptUser.id };
  const users = new Map<string, Link>();
  const addUser = (login: string, first: string, last: string, dept: string | null) => {
    if (!has("HumanUser")) return { type: "HumanUser", id: users.size + 1 };
    const r = store.insert(
      "HumanUser",
      only("HumanUser", {
        name: `${first} ${last}`.trim(),
        firstname: first,
        lastname: last,
        login,
        email: `${login}@studio.example`,
        department: dept,
        sg_status_list: "act",
        created_at: at(1),
        created_by: scriptLink,
      }),
    );
    const link = { type: "HumanUser", id: r.id };
    users.set(login, link);
    return link;
  };

  if (options.dataset === "demo") {
    for (const [first, last, dept] of PEOPLE) addUser(`${first!.toLowerCase()}.${last!.toLowerCase()}`, first!, last!, dept!);
  }
  for (const u of options.users) {
    if (users.has(u.login)) continue;
    const [first, ...rest] = (u.name ?? u.login).split(" ");
    addUser(u.login, first ?? u.login, rest.join(" "), null);
  }
  if (options.dataset === "empty") return { scriptUser: scriptLink, users };

  const people = [...users.values()];
  const by = () => (people.length ? pick(people) : scriptLink);
  let history = 0;
  const tick = () => at(24 + history++ * 0.05);

  // Projects (and a few historical events so the event log does not start empty).
  const projects: Link[] = PROJECTS.map((p, i) => {
    const r = store.insert(
      "Project",
      only("Project", {
        ...p,
        sg_status: "Active",
        start_date: `2024-0${i + 1}-08`,
        users: people.slice(0, 4 + i),
        created_at: at(2 + i),
        created_by: scriptLink,
      }),
    );
    if (has("EventLogEntry")) {
      store.appendEvent({
        event_type: "Shotgun_Project_New",
        meta: { type: "new_entity", entity_type: "Project", entity_id: r.id },
        entity: { type: "Project", id: r.id },
        project: { type: "Project", id: r.id },
        user: scriptLink,
        description: `${options.scriptName} created new Project ${p.name}`,
        created_at: at(2 + i),
      });
    }
    return { type: "Project", id: r.id };
  });

  const steps = new Map<string, Link>();
  if (has("Step")) {
    [...SHOT_STEPS.map((s) => [...s, "Shot"]), ...ASSET_STEPS.map((s) => [...s, "Asset"])].forEach(([code, short, et], i) => {
      const r = store.insert("Step", only("Step", { code, short_name: short, entity_type: et, list_order: i + 1, created_at: at(1) }));
      steps.set(code!, { type: "Step", id: r.id });
    });
  }
  const pfTypes: Link[] = [];
  if (has("PublishedFileType")) {
    for (const [code, short] of [
      ["Maya Scene", "ma"],
      ["Alembic Cache", "abc"],
      ["Rendered Image", "exr"],
      ["Nuke Script", "nk"],
    ]) {
      pfTypes.push({
        type: "PublishedFileType",
        id: store.insert("PublishedFileType", only("PublishedFileType", { code, short_name: short, created_at: at(1) })).id,
      });
    }
  }

  // Sequences: about ten shots each, spread over the projects (the first one is the big show).
  const shotCount = options.shots ?? 60;
  const assetCount = options.assets ?? 40;
  const seqSize = 10;
  const seqCount = Math.max(1, Math.ceil(shotCount / seqSize));
  const sequences: Array<{ link: Link; project: Link; code: string }> = [];
  if (has("Sequence")) {
    for (let i = 0; i < seqCount; i++) {
      const project = projects[i < seqCount / 2 ? 0 : i % projects.length]!;
      const code = `${PROJECTS[projects.indexOf(project)]!.code}_${String(((i + 1) * 10) % 100000).padStart(3, "0")}`;
      const r = store.insert(
        "Sequence",
        only("Sequence", { code, project, description: `Sequence ${i + 1}`, sg_status_list: pick(SHOT_STATUS), created_at: tick(), created_by: by() }),
      );
      sequences.push({ link: { type: "Sequence", id: r.id }, project, code });
    }
  }

  const assets: Array<{ link: Link; project: Link }> = [];
  if (has("Asset")) {
    for (let i = 0; i < assetCount; i++) {
      const project = projects[i % projects.length]!;
      const base = ASSET_NAMES[i % ASSET_NAMES.length]!;
      const code = i < ASSET_NAMES.length ? base : `${base} ${Math.floor(i / ASSET_NAMES.length) + 1}`;
      const r = store.insert(
        "Asset",
        only("Asset", {
          code,
          project,
          sg_asset_type: pick(ASSET_TYPES),
          sg_status_list: pick(SHOT_STATUS),
          description: `${code} asset`,
          created_at: tick(),
          created_by: by(),
        }),
      );
      assets.push({ link: { type: "Asset", id: r.id }, project });
    }
  }

  // Shots: big sizes only make shots (and their sequences); the rest of the studio stays small.
  const detailed = shotCount <= 2000;
  const shots: Array<{ link: Link; project: Link }> = [];
  if (has("Shot")) {
    for (let i = 0; i < shotCount; i++) {
      const seq = sequences[Math.floor(i / seqSize)];
      const project = seq?.project ?? projects[0]!;
      const cutIn = 1001;
      const duration = 24 + Math.floor(random() * 120);
      const linked = detailed && assets.length ? [pick(assets).link] : [];
      const r = store.insert(
        "Shot",
        only("Shot", {
          code: `${seq?.code ?? "SH"}_${String(((i % seqSize) + 1) * 10).padStart(4, "0")}`,
          project,
          sg_sequence: seq?.link ?? null,
          sg_status_list: pick(SHOT_STATUS),
          sg_cut_in: cutIn,
          sg_cut_out: cutIn + duration - 1,
          sg_cut_duration: duration,
          sg_cut_order: (i % seqSize) + 1,
          description: detailed ? `Shot ${i + 1}` : null,
          assets: linked,
          created_at: tick(),
          created_by: by(),
        }),
      );
      shots.push({ link: { type: "Shot", id: r.id }, project });
    }
  }
  if (!detailed || !has("Task")) return { scriptUser: scriptLink, users };

  // Tasks, versions and published files for every shot and asset (demo sizes only).
  let versionNo = 0;
  const addWork = (entity: Link, project: Link, stepCodes: string[][]) => {
    for (const [stepCode] of stepCodes.slice(0, 2 + Math.floor(random() * (stepCodes.length - 1)))) {
      const step = steps.get(stepCode!) ?? null;
      const status = pick(SHOT_STATUS);
      const task = store.insert(
        "Task",
        only("Task", {
          content: stepCode,
          project,
          entity,
          step,
          sg_status_list: status,
          task_assignees: people.length ? [pick(people)] : [],
          start_date: "2024-02-05",
          due_date: "2024-03-01",
          est_in_mins: 60 * 8 * (1 + Math.floor(random() * 5)),
          created_at: tick(),
          created_by: by(),
        }),
      );
      const taskLink = { type: "Task", id: task.id };
      if (status === "wtg" || status === "rdy" || !has("Version")) continue;
      versionNo++;
      const name = `${displayOf(store, entity)}_${stepCode!.toLowerCase()}_v${String(1 + (versionNo % 3)).padStart(3, "0")}`;
      const artist = by();
      const version = store.insert(
        "Version",
        only("Version", {
          code: name,
          project,
          entity,
          sg_task: taskLink,
          user: artist,
          sg_status_list: pick(["rev", "vwd", "apr", "rej"]),
          sg_first_frame: 1001,
          sg_last_frame: 1100,
          frame_count: 100,
          sg_path_to_frames: `/mnt/show/${name}/${name}.####.exr`,
          created_at: tick(),
          created_by: artist,
        }),
      );
      if (has("PublishedFile") && pfTypes.length) {
        store.insert(
          "PublishedFile",
          only("PublishedFile", {
            code: `${name}.ma`,
            name: displayOf(store, entity),
            project,
            entity,
            task: taskLink,
            version: { type: "Version", id: version.id },
            published_file_type: pick(pfTypes),
            version_number: 1 + (versionNo % 3),
            path_cache: `show/${name}.ma`,
            sg_status_list: "cmpt",
            created_at: tick(),
            created_by: artist,
          }),
        );
      }
    }
  };
  for (const s of shots) addWork(s.link, s.project, SHOT_STEPS);
  for (const a of assets) addWork(a.link, a.project, ASSET_STEPS);

  if (has("Playlist") && has("Version")) {
    const versions = [...store.records("Version")].slice(0, 6).map((v) => ({ type: "Version", id: v.id }));
    store.insert(
      "Playlist",
      only("Playlist", { code: "Dailies 2024-02-12", project: projects[0], versions, sg_date_and_time: at(24 * 35), created_at: tick(), created_by: by() }),
    );
  }
  if (has("Note") && shots.length) {
    for (let i = 0; i < Math.min(5, shots.length); i++) {
      const s = shots[i]!;
      store.insert(
        "Note",
        only("Note", {
          subject: `Notes on ${displayOf(store, s.link)}`,
          content: "Please push the timing two frames earlier.",
          project: s.project,
          note_links: [s.link],
          user: by(),
          sg_status_list: "opn",
          created_at: tick(),
          created_by: by(),
        }),
      );
    }
  }
  return { scriptUser: scriptLink, users };
}

function displayOf(store: SimStore, l: Link): string {
  return store.displayName(l) ?? `${l.type}_${l.id}`;
}
