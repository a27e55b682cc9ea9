/**
 * The product's own compact schema for the demo site, built into the api3 `schema_read()` form
 * (the same form `--schema FILE` loads). It covers the entity types studio tools use every day,
 * with the field names, data types and link `valid_types` of a stock ShotGrid site.
 */
import type { Api3Field, Api3Schema } from "./schema.ts";

type FieldSpec = [
  name: string,
  dataType: string,
  extra?: {
    displayName?: string;
    validTypes?: string[];
    validValues?: string[];
    defaultValue?: unknown;
    editable?: boolean;
    mandatory?: boolean;
  },
];

const USERS = ["HumanUser", "ApiUser"];
const STATUS = ["wtg", "rdy", "ip", "rev", "fin", "hld", "omt"];

/** Fields every entity type has. */
function common(type: string): FieldSpec[] {
  if (type === "EventLogEntry") {
    // Events are written once: no updated_at/updated_by, no creator other than `user`.
    return [
      ["id", "number", { displayName: "Id", editable: false }],
      ["cached_display_name", "text", { displayName: "Cached Display Name" }],
      ["created_at", "date_time", { displayName: "Date Created", editable: false }],
    ];
  }
  return [
    ["id", "number", { displayName: "Id", editable: false }],
    ["cached_display_name", "text", { displayName: "Cached Display Name" }],
    ["created_at", "date_time", { displayName: "Date Created", editable: false }],
    ["created_by", "entity", { displayName: "Created by", validTypes: USERS, editable: false }],
    ["updated_at", "date_time", { displayName: "Date Updated", editable: false }],
    ["updated_by", "entity", { displayName: "Updated by", validTypes: USERS, editable: false }],
    ["tag_list", "tag_list", { displayName: "Tags" }],
  ];
}

const TYPES: Record<string, FieldSpec[]> = {
  Project: [
    ["name", "text", { displayName: "Project Name", mandatory: true }],
    ["code", "text", { displayName: "Code" }],
    ["sg_description", "text", { displayName: "Description" }],
    ["sg_status", "list", { displayName: "Status", validValues: ["Active", "Bidding", "Demo", "Lost"], defaultValue: "Active" }],
    ["sg_type", "list", { displayName: "Type", validValues: ["Feature", "Episodic", "Commercial", "Game Cinematic"] }],
    ["archived", "checkbox", { displayName: "Archived", defaultValue: false }],
    ["is_template", "checkbox", { displayName: "Template", defaultValue: false }],
    ["start_date", "date", { displayName: "Start Date" }],
    ["end_date", "date", { displayName: "End Date" }],
    ["tank_name", "text", { displayName: "Tank Name" }],
    ["image", "image", { displayName: "Thumbnail" }],
    ["billboard", "url", { displayName: "Billboard" }],
    ["users", "multi_entity", { displayName: "Users", validTypes: ["HumanUser"] }],
  ],
  Sequence: [
    ["code", "text", { displayName: "Sequence Name", mandatory: true }],
    ["description", "text", { displayName: "Description" }],
    ["project", "entity", { displayName: "Project", validTypes: ["Project"] }],
    ["sg_status_list", "status_list", { displayName: "Status", validValues: STATUS, defaultValue: "wtg" }],
    ["shots", "multi_entity", { displayName: "Shots", validTypes: ["Shot"] }],
    ["assets", "multi_entity", { displayName: "Assets", validTypes: ["Asset"] }],
    ["image", "image", { displayName: "Thumbnail" }],
  ],
  Shot: [
    ["code", "text", { displayName: "Shot Code", mandatory: true }],
    ["description", "text", { displayName: "Description" }],
    ["project", "entity", { displayName: "Project", validTypes: ["Project"] }],
    ["sg_sequence", "entity", { displayName: "Sequence", validTypes: ["Sequence"] }],
    ["sg_status_list", "status_list", { displayName: "Status", validValues: STATUS, defaultValue: "wtg" }],
    ["sg_cut_in", "number", { displayName: "Cut In" }],
    ["sg_cut_out", "number", { displayName: "Cut Out" }],
    ["sg_cut_duration", "number", { displayName: "Cut Duration" }],
    ["sg_cut_order", "number", { displayName: "Cut Order" }],
    ["sg_frame_rate", "float", { displayName: "Frame Rate" }],
    ["sg_shot_type", "list", { displayName: "Type", validValues: ["Bg", "Fx", "Comp", "Anim"] }],
    ["sg_target_date", "date", { displayName: "Target Date" }],
    ["sg_omit", "checkbox", { displayName: "Omit", defaultValue: false }],
    ["assets", "multi_entity", { displayName: "Assets", validTypes: ["Asset"] }],
    ["tasks", "multi_entity", { displayName: "Tasks", validTypes: ["Task"] }],
    ["sg_versions", "multi_entity", { displayName: "Versions", validTypes: ["Version"] }],
    ["parent_shots", "multi_entity", { displayName: "Parent Shots", validTypes: ["Shot"] }],
    ["image", "image", { displayName: "Thumbnail" }],
    ["sg_metadata", "serializable", { displayName: "Metadata" }],
  ],
  Asset: [
    ["code", "text", { displayName: "Asset Name", mandatory: true }],
    ["description", "text", { displayName: "Description" }],
    ["project", "entity", { displayName: "Project", validTypes: ["Project"] }],
    ["sg_asset_type", "list", { displayName: "Type", validValues: ["Character", "Prop", "Environment", "Vehicle", "Matte Painting", "FX"] }],
    ["sg_status_list", "status_list", { displayName: "Status", validValues: STATUS, defaultValue: "wtg" }],
    ["sg_keep", "checkbox", { displayName: "Keep", defaultValue: false }],
    ["shots", "multi_entity", { displayName: "Shots", validTypes: ["Shot"] }],
    ["sequences", "multi_entity", { displayName: "Sequences", validTypes: ["Sequence"] }],
    ["parents", "multi_entity", { displayName: "Parent Assets", validTypes: ["Asset"] }],
    ["tasks", "multi_entity", { displayName: "Tasks", validTypes: ["Task"] }],
    ["image", "image", { displayName: "Thumbnail" }],
  ],
  Step: [
    ["code", "text", { displayName: "Step Name", mandatory: true }],
    ["short_name", "text", { displayName: "Short Name" }],
    ["description", "text", { displayName: "Description" }],
    ["entity_type", "entity_type", { displayName: "Entity Type" }],
    ["list_order", "number", { displayName: "Order" }],
    ["color", "color", { displayName: "Color" }],
  ],
  Task: [
    ["content", "text", { displayName: "Task Name", mandatory: true }],
    ["project", "entity", { displayName: "Project", validTypes: ["Project"] }],
    ["entity", "entity", { displayName: "Link", validTypes: ["Shot", "Asset", "Sequence", "Project"] }],
    ["step", "entity", { displayName: "Pipeline Step", validTypes: ["Step"] }],
    ["sg_status_list", "status_list", { displayName: "Status", validValues: STATUS, defaultValue: "wtg" }],
    ["task_assignees", "multi_entity", { displayName: "Assigned To", validTypes: ["HumanUser"] }],
    ["start_date", "date", { displayName: "Start Date" }],
    ["due_date", "date", { displayName: "Due Date" }],
    ["duration", "duration", { displayName: "Duration" }],
    ["est_in_mins", "duration", { displayName: "Bid" }],
    ["sg_priority", "list", { displayName: "Priority", validValues: ["1", "2", "3"] }],
    ["milestone", "checkbox", { displayName: "Milestone", defaultValue: false }],
    ["splits", "serializable", { displayName: "Splits" }],
  ],
  Version: [
    ["code", "text", { displayName: "Version Name", mandatory: true }],
    ["description", "text", { displayName: "Description" }],
    ["project", "entity", { displayName: "Project", validTypes: ["Project"] }],
    ["entity", "entity", { displayName: "Link", validTypes: ["Shot", "Asset", "Sequence"] }],
    ["sg_task", "entity", { displayName: "Task", validTypes: ["Task"] }],
    ["user", "entity", { displayName: "Artist", validTypes: USERS }],
    ["sg_status_list", "status_list", { displayName: "Status", validValues: ["na", "rev", "vwd", "apr", "rej"], defaultValue: "rev" }],
    ["sg_first_frame", "number", { displayName: "First Frame" }],
    ["sg_last_frame", "number", { displayName: "Last Frame" }],
    ["frame_count", "number", { displayName: "Frame Count" }],
    ["sg_path_to_frames", "text", { displayName: "Path to Frames" }],
    ["sg_path_to_movie", "text", { displayName: "Path to Movie" }],
    ["sg_uploaded_movie", "url", { displayName: "Uploaded Movie" }],
    ["published_files", "multi_entity", { displayName: "Published Files", validTypes: ["PublishedFile"] }],
    ["playlists", "multi_entity", { displayName: "Playlists", validTypes: ["Playlist"] }],
    ["image", "image", { displayName: "Thumbnail" }],
  ],
  PublishedFileType: [
    ["code", "text", { displayName: "Published File Type", mandatory: true }],
    ["short_name", "text", { displayName: "Short Name" }],
    ["description", "text", { displayName: "Description" }],
  ],
  PublishedFile: [
    ["code", "text", { displayName: "Published File Name" }],
    ["name", "text", { displayName: "Name" }],
    ["description", "text", { displayName: "Description" }],
    ["project", "entity", { displayName: "Project", validTypes: ["Project"] }],
    ["entity", "entity", { displayName: "Link", validTypes: ["Shot", "Asset", "Sequence"] }],
    ["task", "entity", { displayName: "Task", validTypes: ["Task"] }],
    ["version", "entity", { displayName: "Version", validTypes: ["Version"] }],
    ["published_file_type", "entity", { displayName: "Published File Type", validTypes: ["PublishedFileType"] }],
    ["version_number", "number", { displayName: "Version Number" }],
    ["path", "url", { displayName: "Path" }],
    ["path_cache", "text", { displayName: "Path Cache" }],
    ["sg_status_list", "status_list", { displayName: "Status", validValues: ["wtg", "ip", "cmpt"], defaultValue: "cmpt" }],
    ["upstream_published_files", "multi_entity", { displayName: "Upstream Published Files", validTypes: ["PublishedFile"] }],
  ],
  HumanUser: [
    ["name", "text", { displayName: "Name" }],
    ["firstname", "text", { displayName: "First Name" }],
    ["lastname", "text", { displayName: "Last Name" }],
    ["login", "text", { displayName: "Login" }],
    ["email", "text", { displayName: "Email" }],
    ["department", "text", { displayName: "Department" }],
    ["sg_status_list", "status_list", { displayName: "Status", validValues: ["act", "dis"], defaultValue: "act" }],
    ["password_proxy", "password", { displayName: "Password" }],
    ["projects", "multi_entity", { displayName: "Projects", validTypes: ["Project"] }],
    ["image", "image", { displayName: "Thumbnail" }],
  ],
  ApiUser: [
    ["firstname", "text", { displayName: "Script Name" }],
    ["lastname", "text", { displayName: "Version" }],
    ["description", "text", { displayName: "Description" }],
    ["email", "text", { displayName: "Email" }],
    ["generate_event_log_entries", "checkbox", { displayName: "Generate Event Log Entries", defaultValue: true }],
    ["salted_password", "text", { displayName: "Application Key", editable: false }],
  ],
  Note: [
    ["subject", "text", { displayName: "Subject" }],
    ["content", "text", { displayName: "Body" }],
    ["project", "entity", { displayName: "Project", validTypes: ["Project"] }],
    ["user", "entity", { displayName: "Author", validTypes: USERS }],
    ["note_links", "multi_entity", { displayName: "Links", validTypes: ["Shot", "Asset", "Sequence", "Version", "Playlist"] }],
    ["tasks", "multi_entity", { displayName: "Tasks", validTypes: ["Task"] }],
    ["addressings_to", "multi_entity", { displayName: "To", validTypes: ["HumanUser"] }],
    ["addressings_cc", "multi_entity", { displayName: "Cc", validTypes: ["HumanUser"] }],
    ["sg_note_type", "list", { displayName: "Type", validValues: ["Client", "Internal", "To-do"] }],
    ["sg_status_list", "status_list", { displayName: "Status", validValues: ["opn", "ip", "clsd"], defaultValue: "opn" }],
  ],
  Playlist: [
    ["code", "text", { displayName: "Playlist Name", mandatory: true }],
    ["description", "text", { displayName: "Description" }],
    ["project", "entity", { displayName: "Project", validTypes: ["Project"] }],
    ["versions", "multi_entity", { displayName: "Versions", validTypes: ["Version"] }],
    ["sg_date_and_time", "date_time", { displayName: "Date and Time" }],
    ["locked", "checkbox", { displayName: "Locked", defaultValue: false }],
  ],
  EventLogEntry: [
    ["event_type", "text", { displayName: "Event Type" }],
    ["attribute_name", "text", { displayName: "Attribute Name" }],
    ["description", "text", { displayName: "Description" }],
    ["entity", "entity", { displayName: "Link", validTypes: [] }],
    ["project", "entity", { displayName: "Project", validTypes: ["Project"] }],
    ["user", "entity", { displayName: "Who", validTypes: USERS }],
    ["meta", "serializable", { displayName: "Meta" }],
    ["session_uuid", "uuid", { displayName: "Session Id" }],
  ],
};

function buildField(type: string, [name, dataType, extra = {}]: FieldSpec): Api3Field {
  const properties: Record<string, { value: unknown; editable: boolean }> = {
    default_value: { value: extra.defaultValue ?? null, editable: false },
    summary_default: { value: "none", editable: true },
  };
  if (extra.validTypes) properties["valid_types"] = { value: extra.validTypes, editable: true };
  if (extra.validValues) properties["valid_values"] = { value: extra.validValues, editable: true };
  return {
    data_type: { value: dataType, editable: false },
    description: { value: "", editable: true },
    editable: { value: extra.editable ?? true, editable: false },
    entity_type: { value: type, editable: false },
    mandatory: { value: extra.mandatory ?? false, editable: false },
    name: { value: extra.displayName ?? name, editable: true },
    properties,
    unique: { value: false, editable: false },
  };
}

/** Build the demo schema (a fresh object each call, so callers may change it). */
export function demoSchema(): Api3Schema {
  const schema: Api3Schema = {};
  for (const [type, specs] of Object.entries(TYPES)) {
    const fields: Record<string, Api3Field> = {};
    for (const spec of [...common(type), ...specs]) fields[spec[0]] = buildField(type, spec);
    schema[type] = fields;
  }
  // EventLogEntry.entity links to anything the site knows.
  const eventEntity = schema["EventLogEntry"]!["entity"]!.properties!;
  eventEntity["valid_types"] = { value: Object.keys(TYPES).filter((t) => t !== "EventLogEntry"), editable: true };
  return schema;
}
