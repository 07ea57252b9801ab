// Every string the tablet shows, in Japanese (default) and English, and the language switch (kept in
// localStorage under "kyukyu.lang"; nothing else about the patient is ever stored there).
// t("key", {param}) looks a string up in the current language, falling back to Japanese, then the key.

const ja = {
  "app.title": "マイナ救急",
  "app.docTitle": "マイナ救急 端末",
  "app.loading": "読み込み中…",
  "top.lang": "English",
  "top.theme.toNight": "夜間表示",
  "top.theme.toDay": "昼間表示",
  "top.menu": "メニュー",
  "top.crew": "隊員 {crew}",
  "menu.lock": "画面をロック",
  "menu.signout": "サインアウト",
  "menu.signout.confirm": "サインアウトしますか？ 次に使うときは、隊員ID・パスワード・確認コードが必要です。",
  "common.cancel": "キャンセル",
  "common.ok": "OK",
  "common.back": "戻る",
  "busy": "通信中… {s} 秒",
  "seconds": "{s} 秒",
  "wait.ms": "{m}分{s}秒",
  "wait.s": "{s}秒",
  "list.separator": "・",

  "err.network": "ゲートウェイに接続できません。ネットワークとゲートウェイを確認してください。",
  "err.timeout": "ゲートウェイが {s} 秒以内に応答しませんでした。もう一度お試しください。",
  "err.csrf": "セキュリティ確認に失敗しました。画面を再読み込みしてください。",
  "err.conflict": "この操作は今の段階ではできません。",
  "err.notFound": "見つかりません。",
  "err.generic": "エラーが発生しました。",
  "err.detail": "理由: {detail}",

  "signin.title": "勤務開始のサインイン",
  "signin.sub": "勤務の最初に一度だけ必要です。",
  "signin.crewId": "隊員ID",
  "signin.password": "パスワード",
  "signin.totp": "確認コード（6桁）",
  "signin.submit": "サインイン",
  "signin.failed": "サインインできませんでした。隊員ID・パスワード・確認コードを確かめてください。",
  "signin.locked": "失敗が続いたため、このアカウントはロックされています。あと {wait} 待ってから、もう一度お試しください。",
  "signin.unlockedNow": "ロックは解除されました。もう一度サインインしてください。",
  "signin.missing": "すべての項目を入力してください。",
  "signin.ended": "PIN の誤りが続いたため、サインアウトしました。もう一度サインインしてください。",
  "signin.expired": "サインインの有効期限が切れました。もう一度サインインしてください。",

  "lock.title": "画面ロック中",
  "lock.hint": "隊員PIN を入力してください",
  "lock.wrong": "PIN が違います。残り {n} 回",
  "lock.signout": "別の隊員でサインイン",

  "pin.delete": "削除",
  "pin.ok": "OK",
  "pin.entered": "{n} 桁入力済み",

  "incidents.title": "事案",
  "incidents.new": "新しい事案",
  "incidents.none": "対応中の事案はありません。",
  "incidents.source.dispatch": "指令から",
  "incidents.source.crew": "隊で作成",
  "incidents.received": "受信 {time}",
  "incidents.created": "作成 {time}",
  "incidents.open": "この事案を開く",
  "incidents.take": "この事案を引き受ける",
  "incidents.updated": "{time} 更新",
  "incidents.closedNote": "事案を終了しました。",

  "phase.created": "同意待ち",
  "phase.consent-recorded": "本人確認待ち",
  "phase.identified": "本人確認済み",
  "phase.fetching": "情報を取得中",
  "phase.retry-pending": "再試行待ち",
  "phase.summary": "要約を表示中",
  "phase.closed": "終了",

  "incident.back": "事案一覧",
  "incident.close": "事案を終了",
  "incident.close.confirm": "この事案を終了しますか？ 取得した情報はこの端末とゲートウェイから消去されます。",
  "incident.close.yes": "終了する",
  "incident.notFound": "この事案は見つかりません（すでに終了した可能性があります）。",
  "incident.dispatch": "指令情報",
  "incident.location": "場所",
  "incident.note": "指令メモ",
  "incident.received": "受信",

  "consent.title": "情報閲覧への同意",
  "consent.question": "傷病者に、受診歴や薬などの情報を閲覧することへの同意を確認してください。",
  "consent.verbal": "口頭同意",
  "consent.verbal.sub": "本人が口頭で同意した",
  "consent.exception": "意識なし・生命身体の保護",
  "consent.exception.sub": "同意を得られないが、生命・身体の保護に必要",
  "consent.refused": "拒否",
  "consent.refused.sub": "本人が閲覧を拒否した",
  "consent.basis.verbal": "口頭同意",
  "consent.basis.life-or-body-exception": "意識なし・生命身体の保護",
  "consent.basis.refused": "拒否",
  "consent.recorded": "同意: {basis}",

  "closed.consent-refused.title": "同意の拒否を記録しました",
  "closed.consent-refused.body": "閲覧しようとしたこと（拒否）は、オンライン資格確認に記録されます。情報は取得していません。この事案は終了しました。",
  "closed.consent-expired.title": "同意の有効期限が切れました",
  "closed.consent-expired.body": "同意の有効期限が切れたため、この事案は終了しました。取得した情報は消去されました。",
  "closed.closed-by-crew.title": "事案を終了しました",
  "closed.closed-by-crew.body": "取得した情報は消去されました。",
  "closed.toList": "事案一覧へ",

  "card.title": "カードをリーダーにかざしてください",
  "card.sub": "マイナ保険証・住基カード・スマートフォンが使えます。読み取りは自動で始まります。",
  "card.waiting": "カードを待っています",
  "card.reading": "読み取り中です。カードを動かさないでください",
  "card.removed": "カードが離れました。もう一度かざしてください",
  "card.removed.sub": "読み取りは中断したところから再開します。",
  "card.approve": "スマートフォンで承認してください",
  "card.approve.sub": "本人がスマートフォンで承認すると、自動で続きます。",
  "card.read": "読み取りました",
  "card.failed": "カードを読み取れませんでした",
  "card.noCard": "カードなしで照会",
  "card.refused.title": "同意の拒否を記録します",
  "card.refused.body": "閲覧しようとしたこと（拒否）をオンライン資格確認に記録するため、カードを読み取ります。情報は取得も表示もしません。記録が済むと、この事案は終了します。",
  "card.elapsed": "経過 {s} 秒",

  "reader.no-service": "カードリーダーのサービスが動いていません。自動で再接続を続けます。",
  "reader.no-reader": "カードリーダーが接続されていません。ケーブルを確認してください。",
  "reader.empty": "リーダー準備完了（カードなし）",
  "reader.card-present": "カードを検出しました",
  "reader.reading": "読み取り中",
  "reader.unknown": "リーダーの状態を確認中",
  "reader.name": "リーダー: {name}",

  "cardpin.title": "スマートフォンの暗証番号（4桁）",
  "cardpin.hint": "本人に暗証番号を入力してもらってください。",
  "cardpin.tries": "残り {n} 回",
  "cardpin.lastTry": "残り1回です。次に間違えると暗証番号がロックされ、解除には本人が市区町村の窓口で手続きをする必要があります。暗証番号が確かなときだけ入力してください。分からないときは「カードなしで照会」を使ってください。",
  "cardpin.confirm": "残り1回であることを本人に伝えました",
  "cardpin.needConfirm": "最後の1回です。先に確認のチェックを入れてください。",
  "cardpin.wrong": "暗証番号が違います。残り {n} 回",
  "cardpin.locked": "暗証番号がロックされました。「カードなしで照会」を使ってください。",
  "cardpin.format": "4桁の数字を入力してください（回数は減っていません）。",

  "lookup.title": "カードなしで照会",
  "lookup.tab.demographics": "氏名・生年月日・性別・住所",
  "lookup.tab.insurance": "保険証の番号",
  "lookup.familyName": "氏（漢字）",
  "lookup.givenName": "名（漢字）",
  "lookup.familyKana": "氏（カナ）",
  "lookup.givenKana": "名（カナ）",
  "lookup.kanaHint": "ひらがなで入力しても、カタカナに直します。",
  "lookup.birthDate": "生年月日（西暦）",
  "lookup.year": "年",
  "lookup.month": "月",
  "lookup.day": "日",
  "lookup.sex": "性別",
  "lookup.address": "住所",
  "lookup.insurerNumber": "保険者番号",
  "lookup.insuredSymbol": "記号",
  "lookup.insuredNumber": "番号",
  "lookup.submit": "照会する",
  "lookup.backToCard": "カードで読み取る",
  "lookup.missing": "入力してください: {fields}",
  "lookup.badDate": "生年月日が正しくありません。",
  "lookup.badInsurer": "保険者番号は6桁または8桁の数字です。",
  "lookup.sent": "照会しました。結果を待っています。",

  "sex.male": "男性",
  "sex.female": "女性",
  "sex.other": "その他",

  "summary.patient": "傷病者",
  "summary.synthetic": "試験データ SYNTHETIC",
  "summary.age": "{age}歳",
  "summary.birth": "生年月日 {date}",
  "summary.insurer": "保険者 {insurer}",
  "summary.patientPending": "傷病者の情報を取得しています",
  "summary.redFlags": "要注意",
  "summary.redFlags.none": "記録上の要注意事項はありません。",
  "summary.redFlags.pending": "要注意事項を確認中（届いた情報から順に表示します）",
  "summary.redFlags.incomplete": "取得できなかった項目があります（{cats}）。要注意事項が欠けている可能性があります。",
  "summary.notFetched": "取得できませんでした。",
  "summary.details": "詳細",
  "summary.hideDetails": "詳細を閉じる",
  "summary.noDetails": "詳細な記録はありません。",
  "summary.empty": "記録なし",
  "summary.waiting": "まだ届いていません",
  "summary.dialysis.yes": "透析あり（最終 {date}）",
  "summary.dialysis.no": "透析の記録なし",
  "summary.since": "{date}〜",
  "summary.toLookup": "カードなしで照会する",
  "summary.identification": "確認方法: {how}",
  "summary.progress": "取得状況 {done}/{total}",
  "summary.progress.failed": "取得状況 {done}/{total}（{failed}件 取得できず）",

  "section.medications": "服用中の薬",
  "section.diagnoses": "病名・既往歴",
  "section.dialysis": "透析",
  "section.surgery": "手術歴",
  "section.visits": "最近の受診",
  "section.checkups": "健診の基準値外",
  "section.allergies": "アレルギー・禁忌",

  "cat.qualification": "資格",
  "cat.visits": "受診歴",
  "cat.diagnoses": "病名",
  "cat.medications": "調剤",
  "cat.prescriptions": "処方箋",
  "cat.surgery": "手術",
  "cat.treatment": "診療行為",
  "cat.checkups": "健診",
  "cat.allergies": "アレルギー",

  "status.pending": "取得中 {s}秒",
  "status.waiting": "待機中",
  "status.arrived": "取得済み",
  "status.arrived.count": "取得済み {n}件",
  "status.none-on-record": "記録なし",
  "status.late": "遅れて到着",
  "status.failed": "取得失敗",
  "status.retrying": "再試行中",
  "status.timed-out": "時間切れ",
  "status.cancelled": "中止",
  "status.unknown": "状態不明",

  "auth.pending": "本人確認中…",
  "auth.ok": "本人確認済み",
  "auth.refused": "本人確認が拒否されました",
  "auth.failed": "本人確認に失敗しました",
  "auth.not-started": "本人確認はまだです",

  "ident.individual-number-card": "マイナ保険証",
  "ident.juki-card": "住基カード",
  "ident.android": "スマートフォン（Android）",
  "ident.iphone": "スマートフォン（iPhone）",
  "ident.lookup-demographics": "4情報で照会",
  "ident.lookup-insurance": "保険証の番号で照会",

  "retry.no-network": "通信できません。自動で再試行します（次回 {time}）",
  "retry.maintenance": "オンライン資格確認はメンテナンス中です。終了後に自動で再試行します（次回 {time}）",
  "retry.breaker-open": "オンライン資格確認が応答しないため、接続を一時的に止めています。自動で再試行します（次回 {time}）",
  "retry.attempt": "{n}回目の再試行・あと {s} 秒",

  "sse.reconnecting": "ゲートウェイに再接続中…（{s} 秒）",
  "sse.gone": "ゲートウェイとの接続が切れています。自動で再接続を続けます。",

  "drug.anticoagulant": "抗凝固薬",
  "drug.antiplatelet": "抗血小板薬",
  "drug.insulin": "インスリン",
  "drug.hypoglycaemic": "血糖降下薬",
  "drug.antiepileptic": "抗てんかん薬",
  "drug.corticosteroid": "ステロイド",
  "drug.opioid": "麻薬性鎮痛薬",

  "flag.anticoagulant": "抗凝固薬",
  "flag.antiplatelet": "抗血小板薬",
  "flag.insulin": "インスリン",
  "flag.hypoglycaemic": "血糖降下薬",
  "flag.antiepileptic": "抗てんかん薬",
  "flag.corticosteroid": "ステロイド",
  "flag.opioid": "麻薬性鎮痛薬",
  "flag.dialysis": "透析",
  "flag.allergy": "アレルギー",
  "flag.contraindication": "禁忌",
  "flag.infection": "感染症",
  "flag.recent-surgery": "最近の手術",

  "allergy.drug": "薬剤",
  "allergy.food": "食物",
  "allergy.contraindication": "禁忌",
  "allergy.infection": "感染症",
  "allergy.other": "その他",
};

const en = {
  "app.title": "Myna Kyukyu",
  "app.docTitle": "Myna Kyukyu tablet",
  "app.loading": "Loading…",
  "top.lang": "日本語",
  "top.theme.toNight": "Night",
  "top.theme.toDay": "Day",
  "top.menu": "Menu",
  "top.crew": "Crew {crew}",
  "menu.lock": "Lock the screen",
  "menu.signout": "Sign out",
  "menu.signout.confirm": "Sign out? Next time you will need your crew ID, password and code again.",
  "common.cancel": "Cancel",
  "common.ok": "OK",
  "common.back": "Back",
  "busy": "Working… {s} s",
  "seconds": "{s} s",
  "wait.ms": "{m} min {s} s",
  "wait.s": "{s} s",
  "list.separator": ", ",

  "err.network": "Cannot reach the gateway. Check the network and the gateway.",
  "err.timeout": "The gateway did not answer within {s} s. Please try again.",
  "err.csrf": "The security check failed. Please reload the page.",
  "err.conflict": "This cannot be done at this stage.",
  "err.notFound": "Not found.",
  "err.generic": "Something went wrong.",
  "err.detail": "Reason: {detail}",

  "signin.title": "Sign in for your shift",
  "signin.sub": "Needed once at the start of a shift.",
  "signin.crewId": "Crew ID",
  "signin.password": "Password",
  "signin.totp": "Verification code (6 digits)",
  "signin.submit": "Sign in",
  "signin.failed": "Sign-in failed. Check the crew ID, password and verification code.",
  "signin.locked": "This account is locked after repeated failures. Try again in {wait}.",
  "signin.unlockedNow": "The lock has ended. Please sign in again.",
  "signin.missing": "Please fill in every field.",
  "signin.ended": "Signed out after too many wrong PINs. Please sign in again.",
  "signin.expired": "Your sign-in has expired. Please sign in again.",

  "lock.title": "Screen locked",
  "lock.hint": "Enter your crew PIN",
  "lock.wrong": "Wrong PIN. {n} tries left.",
  "lock.wrong.one": "Wrong PIN. 1 try left.",
  "lock.signout": "Sign in as another crew member",

  "pin.delete": "Delete",
  "pin.ok": "OK",
  "pin.entered": "{n} digits entered",

  "incidents.title": "Incidents",
  "incidents.new": "New incident",
  "incidents.none": "No open incidents.",
  "incidents.source.dispatch": "From dispatch",
  "incidents.source.crew": "Created by crew",
  "incidents.received": "Received {time}",
  "incidents.created": "Created {time}",
  "incidents.open": "Open this incident",
  "incidents.take": "Take this incident",
  "incidents.updated": "Updated {time}",
  "incidents.closedNote": "Incident closed.",

  "phase.created": "Awaiting consent",
  "phase.consent-recorded": "Awaiting identification",
  "phase.identified": "Identified",
  "phase.fetching": "Fetching records",
  "phase.retry-pending": "Waiting to retry",
  "phase.summary": "Summary shown",
  "phase.closed": "Closed",

  "incident.back": "Incidents",
  "incident.close": "Close incident",
  "incident.close.confirm": "Close this incident? The records fetched are erased from this tablet and the gateway.",
  "incident.close.yes": "Close it",
  "incident.notFound": "This incident was not found (it may already be closed).",
  "incident.dispatch": "Dispatch",
  "incident.location": "Location",
  "incident.note": "Dispatch note",
  "incident.received": "Received",

  "consent.title": "Consent to view records",
  "consent.question": "Ask the patient whether you may view their visits, medications and other records.",
  "consent.verbal": "Verbal consent",
  "consent.verbal.sub": "The patient agreed verbally",
  "consent.exception": "Unconscious: life-or-body exception",
  "consent.exception.sub": "Cannot consent; needed to protect life or body",
  "consent.refused": "Refused",
  "consent.refused.sub": "The patient refused",
  "consent.basis.verbal": "Verbal consent",
  "consent.basis.life-or-body-exception": "Life-or-body exception",
  "consent.basis.refused": "Refused",
  "consent.recorded": "Consent: {basis}",

  "closed.consent-refused.title": "Refusal recorded",
  "closed.consent-refused.body": "The online eligibility system (onshi) records the attempt and the refusal. No records were fetched. This incident is closed.",
  "closed.consent-expired.title": "Consent expired",
  "closed.consent-expired.body": "The consent expired, so this incident was closed. The records fetched were erased.",
  "closed.closed-by-crew.title": "Incident closed",
  "closed.closed-by-crew.body": "The records fetched were erased.",
  "closed.toList": "Back to incidents",

  "card.title": "Touch the card to the reader",
  "card.sub": "My Number card, juki card or smartphone. Reading starts by itself.",
  "card.waiting": "Waiting for a card",
  "card.reading": "Reading. Keep the card still",
  "card.removed": "The card moved away. Touch it to the reader again",
  "card.removed.sub": "The read resumes where it stopped.",
  "card.approve": "Approve on the smartphone",
  "card.approve.sub": "Once the holder approves on the phone, this continues by itself.",
  "card.read": "Card read",
  "card.failed": "The card could not be read",
  "card.noCard": "No card: look up",
  "card.refused.title": "Recording the refusal",
  "card.refused.body": "To record the attempt (refused) with the online eligibility system, the card is read. No records are fetched or shown. Once it is recorded, this incident closes.",
  "card.elapsed": "{s} s elapsed",

  "reader.no-service": "The card reader service is not running. Reconnecting automatically.",
  "reader.no-reader": "No card reader is connected. Check the cable.",
  "reader.empty": "Reader ready (no card)",
  "reader.card-present": "Card detected",
  "reader.reading": "Reading",
  "reader.unknown": "Checking the reader",
  "reader.name": "Reader: {name}",

  "cardpin.title": "Smartphone PIN (4 digits)",
  "cardpin.hint": "Ask the holder to enter their PIN.",
  "cardpin.tries": "{n} tries left",
  "cardpin.tries.one": "1 try left",
  "cardpin.lastTry": "Last try. One more wrong PIN locks it, and only the holder's city office can unlock it. Enter the PIN only if you are sure of it. If not, use \"No card: look up\".",
  "cardpin.confirm": "I told the holder this is the last try",
  "cardpin.needConfirm": "Last try: tick the confirmation first.",
  "cardpin.wrong": "Wrong PIN. {n} tries left.",
  "cardpin.wrong.one": "Wrong PIN. 1 try left.",
  "cardpin.locked": "The PIN is locked. Use \"No card: look up\".",
  "cardpin.format": "Enter 4 digits (no try was used).",

  "lookup.title": "Look up without a card",
  "lookup.tab.demographics": "Name, birth date, sex, address",
  "lookup.tab.insurance": "Insurance card numbers",
  "lookup.familyName": "Family name (kanji)",
  "lookup.givenName": "Given name (kanji)",
  "lookup.familyKana": "Family name (kana)",
  "lookup.givenKana": "Given name (kana)",
  "lookup.kanaHint": "Hiragana is turned into katakana.",
  "lookup.birthDate": "Birth date",
  "lookup.year": "Year",
  "lookup.month": "Month",
  "lookup.day": "Day",
  "lookup.sex": "Sex",
  "lookup.address": "Address",
  "lookup.insurerNumber": "Insurer number",
  "lookup.insuredSymbol": "Symbol",
  "lookup.insuredNumber": "Number",
  "lookup.submit": "Look up",
  "lookup.backToCard": "Use the card",
  "lookup.missing": "Please fill in: {fields}",
  "lookup.badDate": "The birth date is not a valid date.",
  "lookup.badInsurer": "The insurer number is 6 or 8 digits.",
  "lookup.sent": "Looked up. Waiting for the answer.",

  "sex.male": "Male",
  "sex.female": "Female",
  "sex.other": "Other",

  "summary.patient": "Patient",
  "summary.synthetic": "SYNTHETIC test data",
  "summary.age": "{age} y",
  "summary.birth": "Born {date}",
  "summary.insurer": "Insurer {insurer}",
  "summary.patientPending": "Fetching the patient's details",
  "summary.redFlags": "Red flags",
  "summary.redFlags.none": "No red flags on record.",
  "summary.redFlags.pending": "Checking for red flags (shown as records arrive)",
  "summary.redFlags.incomplete": "Some records could not be fetched ({cats}): red flags may be missing.",
  "summary.notFetched": "Could not be fetched.",
  "summary.details": "Details",
  "summary.hideDetails": "Hide details",
  "summary.noDetails": "No detailed records.",
  "summary.empty": "None on record",
  "summary.waiting": "Not arrived yet",
  "summary.dialysis.yes": "On dialysis (last {date})",
  "summary.dialysis.no": "No dialysis on record",
  "summary.since": "since {date}",
  "summary.toLookup": "Look up without the card",
  "summary.identification": "Identified by: {how}",
  "summary.progress": "Records {done}/{total}",
  "summary.progress.failed": "Records {done}/{total} ({failed} could not be fetched)",

  "section.medications": "Current medications",
  "section.diagnoses": "Diagnoses",
  "section.dialysis": "Dialysis",
  "section.surgery": "Surgery",
  "section.visits": "Recent visits",
  "section.checkups": "Out-of-range checkup values",
  "section.allergies": "Allergies and contraindications",

  "cat.qualification": "Qualification",
  "cat.visits": "Visits",
  "cat.diagnoses": "Diagnoses",
  "cat.medications": "Dispensing",
  "cat.prescriptions": "Prescriptions",
  "cat.surgery": "Surgery",
  "cat.treatment": "Treatment",
  "cat.checkups": "Checkups",
  "cat.allergies": "Allergies",

  "status.pending": "Fetching {s} s",
  "status.waiting": "Waiting",
  "status.arrived": "Arrived",
  "status.arrived.count": "Arrived, {n}",
  "status.none-on-record": "None on record",
  "status.late": "Arrived late",
  "status.failed": "Failed",
  "status.retrying": "Retrying",
  "status.timed-out": "Timed out",
  "status.cancelled": "Cancelled",
  "status.unknown": "Unknown",

  "auth.pending": "Checking identity…",
  "auth.ok": "Identity checked",
  "auth.refused": "Identity check refused",
  "auth.failed": "Identity check failed",
  "auth.not-started": "Identity not checked yet",

  "ident.individual-number-card": "My Number card",
  "ident.juki-card": "Juki card",
  "ident.android": "Smartphone (Android)",
  "ident.iphone": "Smartphone (iPhone)",
  "ident.lookup-demographics": "Lookup by name, birth date, sex, address",
  "ident.lookup-insurance": "Lookup by insurance card",

  "retry.no-network": "No network. Retrying automatically (next at {time})",
  "retry.maintenance": "The online eligibility system is in its maintenance window. Retrying automatically when it ends (next at {time})",
  "retry.breaker-open": "The online eligibility system is not answering, so calls are paused. Retrying automatically (next at {time})",
  "retry.attempt": "Retry {n}, in {s} s",

  "sse.reconnecting": "Reconnecting to the gateway… ({s} s)",
  "sse.gone": "Lost the connection to the gateway. Still trying to reconnect.",

  "drug.anticoagulant": "Anticoagulant",
  "drug.antiplatelet": "Antiplatelet",
  "drug.insulin": "Insulin",
  "drug.hypoglycaemic": "Hypoglycaemic",
  "drug.antiepileptic": "Antiepileptic",
  "drug.corticosteroid": "Corticosteroid",
  "drug.opioid": "Opioid",

  "flag.anticoagulant": "Anticoagulant",
  "flag.antiplatelet": "Antiplatelet",
  "flag.insulin": "Insulin",
  "flag.hypoglycaemic": "Hypoglycaemic",
  "flag.antiepileptic": "Antiepileptic",
  "flag.corticosteroid": "Corticosteroid",
  "flag.opioid": "Opioid",
  "flag.dialysis": "Dialysis",
  "flag.allergy": "Allergy",
  "flag.contraindication": "Contraindication",
  "flag.infection": "Infection",
  "flag.recent-surgery": "Recent surgery",

  "allergy.drug": "Drug",
  "allergy.food": "Food",
  "allergy.contraindication": "Contraindication",
  "allergy.infection": "Infection",
  "allergy.other": "Other",
};

const dictionaries = { ja, en };
const storageKey = "kyukyu.lang";
const listeners = new Set();

function initialLanguage() {
  try {
    const stored = localStorage.getItem(storageKey);
    if (stored === "ja" || stored === "en") return stored;
  } catch {
    // Storage can be unavailable (private mode); Japanese is the default.
  }
  return "ja";
}

let current = initialLanguage();

/** The current language code, "ja" or "en". */
export function lang() {
  return current;
}

/** Switches the language, persists it, and tells every listener. */
export function setLang(code) {
  if (!dictionaries[code] || code === current) return;
  current = code;
  try {
    localStorage.setItem(storageKey, code);
  } catch {
    // Not persisted; the switch still applies to this page.
  }
  document.documentElement.lang = code;
  for (const listener of listeners) listener(code);
}

/** Calls `listener(code)` after every language switch; returns a function that removes it. */
export function onLangChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Looks `key` up and fills `{name}` placeholders from `params`. */
export function t(key, params = {}) {
  const template = dictionaries[current][key] ?? ja[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Like t, with a count: uses "<key>.one" when `n` is 1 and the current language has it (English singular). */
export function tn(key, n, params = {}) {
  const one = `${key}.one`;
  return t(n === 1 && one in dictionaries[current] ? one : key, { ...params, n });
}

/** True when `key` exists in the dictionary (for optional strings such as unknown enum values). */
export function has(key) {
  return key in ja;
}

/** The dictionaries, for the consistency check in the browser tests (every ja key has an en key). */
export const _dictionaries = dictionaries;
