// The board's words, Japanese first (ja default, en by the switch; persisted in localStorage kyukyu.board.lang).
const WORDS = {
  ja: {
    title: "救急受入ボード", lang: "English", signout: "サインアウト", "sound.on": "音を有効にする",
    "conn.off": "未接続", "conn.live": "受信中", "conn.lost": "再接続中…",
    "signin.title": "職員サインイン", "signin.staff": "職員ID", "signin.password": "パスワード",
    "signin.totp": "ワンタイムコード（6桁）", "signin.submit": "サインイン",
    "signin.failed": "職員ID、パスワードまたはワンタイムコードが違います（またはロック中）",
    "err.network": "受信サーバーに接続できません", "err.action": "操作できませんでした",
    empty: "搬送中の患者はいません",
    "status.received": "未確認", "status.acknowledged": "受入確認済", "status.diverted": "受入不可",
    "status.arrived": "到着", "status.withdrawn": "取り下げ",
    "priority.red": "赤", "priority.yellow": "黄", "priority.green": "緑", "priority.none": "緊急度未入力",
    "eta.in": "あと", "eta.over": "予定超過", "eta.none": "到着予定 未入力",
    redflags: "レッドフラグ", vitals: "バイタル", meds: "服薬", history: "既往・透析・手術", allergies: "アレルギー・禁忌",
    checkups: "健診の異常値", gaps: "未取得・遅延の区分", treatment: "救急隊の処置", timeline: "経過",
    onset: "発症", lkw: "最終健常確認", none: "なし", version: "版",
    ack: "受入確認", divert: "受入不可", arrived: "到着（引継ぎ完了）",
    "divert.title": "受入不可の理由", "divert.note": "メモ（「その他」は必須）", "divert.send": "受入不可を送信",
    "divert.cancel": "取消",
    "reason.no-beds": "満床", "reason.no-specialist": "専門医不在", "reason.ct-unavailable": "CT使用不可",
    "reason.operating-rooms-full": "手術室満室", "reason.icu-full": "ICU満床", "reason.other": "その他",
    "reason.another-hospital": "他院へ搬送", "reason.closed": "救急隊が事案を終了", dismiss: "確認",
    "vital.jcs": "JCS", "vital.gcs": "GCS", "vital.hr": "脈拍", "vital.bp": "血圧", "vital.rr": "呼吸数",
    "vital.spo2": "SpO2", "vital.temp": "体温", "vital.glucose": "血糖",
    "gap.pending": "待機中", "gap.late": "遅延", "gap.failed": "失敗", "gap.retrying": "再試行中",
    "gap.timed-out": "時間切れ", "gap.cancelled": "中止",
    "cat.qualification": "資格", "cat.visits": "受診歴", "cat.diagnoses": "傷病名", "cat.medications": "調剤薬剤",
    "cat.prescriptions": "電子処方箋", "cat.surgery": "手術", "cat.treatment": "診療行為", "cat.checkups": "特定健診",
    "cat.allergies": "アレルギー", "event.received": "受信", "event.acknowledged": "受入確認",
    "event.diverted": "受入不可", "event.arrived": "到着", "event.withdrawn": "取り下げ", male: "男", female: "女",
    age: "歳",
  },
  en: {
    title: "ER arrivals board", lang: "日本語", signout: "Sign out", "sound.on": "Enable sound",
    "conn.off": "Not connected", "conn.live": "Live", "conn.lost": "Reconnecting…",
    "signin.title": "Staff sign-in", "signin.staff": "Staff ID", "signin.password": "Password",
    "signin.totp": "One-time code (6 digits)", "signin.submit": "Sign in",
    "signin.failed": "The staff ID, password or one-time code is wrong (or the account is locked)",
    "err.network": "Cannot reach the receiver", "err.action": "That did not go through",
    empty: "No ambulance on its way",
    "status.received": "Not acknowledged", "status.acknowledged": "Acknowledged", "status.diverted": "Diverted",
    "status.arrived": "Arrived", "status.withdrawn": "Withdrawn",
    "priority.red": "RED", "priority.yellow": "YELLOW", "priority.green": "GREEN", "priority.none": "No priority",
    "eta.in": "in", "eta.over": "overdue", "eta.none": "No ETA",
    redflags: "Red flags", vitals: "Vitals", meds: "Medications", history: "History, dialysis, surgery",
    allergies: "Allergies", checkups: "Checkup values out of range", gaps: "Missing or late",
    treatment: "Crew treatment", timeline: "Timeline", onset: "Onset", lkw: "Last known well", none: "none",
    version: "v", ack: "Acknowledge", divert: "Divert", arrived: "Arrived (handover done)",
    "divert.title": "Why we cannot accept", "divert.note": "Note (required for “other”)", "divert.send": "Send divert",
    "divert.cancel": "Cancel",
    "reason.no-beds": "No beds", "reason.no-specialist": "No specialist", "reason.ct-unavailable": "CT unavailable",
    "reason.operating-rooms-full": "Operating rooms full", "reason.icu-full": "ICU full", "reason.other": "Other",
    "reason.another-hospital": "going to another hospital", "reason.closed": "the crew closed the incident", dismiss: "Dismiss",
    "vital.jcs": "JCS", "vital.gcs": "GCS", "vital.hr": "Heart rate", "vital.bp": "BP", "vital.rr": "Resp. rate",
    "vital.spo2": "SpO2", "vital.temp": "Temp", "vital.glucose": "Glucose",
    "gap.pending": "pending", "gap.late": "late", "gap.failed": "failed", "gap.retrying": "retrying",
    "gap.timed-out": "timed out", "gap.cancelled": "cancelled",
    "cat.qualification": "Qualification", "cat.visits": "Visits", "cat.diagnoses": "Diagnoses",
    "cat.medications": "Dispensed drugs", "cat.prescriptions": "e-Prescriptions", "cat.surgery": "Surgery",
    "cat.treatment": "Treatment", "cat.checkups": "Checkups", "cat.allergies": "Allergies",
    "event.received": "received", "event.acknowledged": "acknowledged", "event.diverted": "diverted",
    "event.arrived": "arrived", "event.withdrawn": "withdrawn", male: "M", female: "F", age: " y",
  },
};

const stored = (() => { try { return localStorage.getItem("kyukyu.board.lang"); } catch { return null; } })();
const asked = new URLSearchParams(location.search).get("lang");
let lang = asked === "en" || asked === "ja" ? asked : stored === "en" ? "en" : "ja";

export function t(key) { return WORDS[lang][key] ?? WORDS.ja[key] ?? key; }
export function currentLang() { return lang; }
export function setLang(next) {
  lang = next;
  try { localStorage.setItem("kyukyu.board.lang", next); } catch { /* private mode */ }
  applyStatic();
}
/** Puts the words of every [data-i18n] element of the page. */
export function applyStatic() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.title = t("title");
}
