import { techniqueInfo, type TechniqueInfo } from './attack.js';
import { estimateTokens } from './ledger.js';
import { CONCLUDE_TOOL, type ChatMessage, type ModelProvider, type ModelRequest, type ModelTurn, type ToolCall } from './model.js';

/**
 * The built-in reasoner: a ModelProvider that needs no network. It reads the conversation (the
 * tool results in it), decides which tools to call next, and concludes by rules over what the
 * tools showed: technique weights and combinations, impossible travel, repeated alerts for an
 * entity and how earlier ones ended, related cases' verdicts, known-benign patterns. Its
 * answer is a pure function of the messages, so a run is reproducible; its token counts are
 * an estimate (characters / 4).
 */
export const BUILTIN_MODEL = 'aisoc-rules-1';

interface AlertView {
  id: string;
  title: string;
  description: string;
  severity: string;
  status: string;
  source: string;
  rule: string | null;
  techniques: string[];
  entities: { type: string; value: string }[];
  tags: string[];
  occurrences: number;
}

interface Indicator {
  type: string;
  value: string;
  alerts: number;
  alerts_outside_case: number;
  false_positive_alerts: number;
  sources: string[];
}

interface History {
  entity: { type: string; value: string };
  alerts_total: number;
  alerts_outside_case: number;
  outside_case_by_status: Record<string, number>;
  by_rule: Record<string, number>;
  recent_outside_case: { id: string; status: string; rule: string | null }[];
}

interface RelatedCase {
  id: string;
  title: string;
  status: string;
  shared_alerts: number;
  shared_entities: string[];
  latest_verdict: string | null;
}

/** What the conversation has shown so far. */
interface Knowledge {
  caseInfo: { id: string; title: string; severity: string; status: string } | null;
  alerts: AlertView[] | null;
  raw: Map<string, unknown>;
  techniques: Map<string, TechniqueInfo>;
  indicators: Indicator[] | null;
  histories: Map<string, History>;
  related: RelatedCase[] | null;
  /** Tool names called (and the entity histories asked for, as `history:type:value`). */
  called: Set<string>;
  evidence: Set<string>;
  refusals: number;
  turns: number;
}

function read(messages: readonly ChatMessage[]): Knowledge {
  const k: Knowledge = {
    caseInfo: null,
    alerts: null,
    raw: new Map(),
    techniques: new Map(),
    indicators: null,
    histories: new Map(),
    related: null,
    called: new Set(),
    evidence: new Set(),
    refusals: 0,
    turns: 0,
  };
  const calls = new Map<string, ToolCall>();
  for (const message of messages) {
    if (message.role === 'assistant') {
      k.turns += 1;
      for (const call of message.toolCalls) {
        calls.set(call.id, call);
        k.called.add(call.name);
        if (call.name === 'entity_alert_history') k.called.add(`history:${String(call.arguments.type)}:${String(call.arguments.value)}`);
      }
      continue;
    }
    if (message.role !== 'tool') continue;
    let parsed: { result?: Record<string, any>; evidence?: { id: string }[]; refused?: boolean; error?: string };
    try {
      parsed = JSON.parse(message.content) as typeof parsed;
    } catch {
      continue;
    }
    if (parsed.refused) k.refusals += 1;
    for (const item of parsed.evidence ?? []) k.evidence.add(item.id);
    const result = parsed.result;
    if (!result) continue;
    switch (message.name) {
      case 'get_case':
        k.caseInfo = result.case ?? null;
        break;
      case 'get_case_alerts':
        k.alerts = (result.alerts ?? []) as AlertView[];
        break;
      case 'get_alert_raw':
        for (const raw of (result.raw ?? []) as { alert_id: string; payload?: unknown; preview?: string }[]) k.raw.set(raw.alert_id, raw.payload ?? raw.preview ?? null);
        break;
      case 'technique_details':
        for (const t of (result.techniques ?? []) as TechniqueInfo[]) k.techniques.set(t.id, t);
        break;
      case 'indicators_seen':
        k.indicators = (result.indicators ?? []) as Indicator[];
        break;
      case 'entity_alert_history': {
        const h = result as History;
        if (h.entity) k.histories.set(`${h.entity.type}:${h.entity.value}`, h);
        break;
      }
      case 'related_cases':
        k.related = (result.cases ?? []) as RelatedCase[];
        break;
    }
  }
  return k;
}

const SEVERITY_RANK: Record<string, number> = { informational: 0, low: 1, medium: 2, high: 3, critical: 4 };
const INTERESTING_RULES = new Set(['impossible_travel', 'brute_force_success', 'password_spraying', 'credential_dumping']);
const PRINCIPAL_TYPES = ['user', 'account', 'host', 'ip'];
const BENIGN_PATTERN =
  /\b(authori[sz]ed (?:test|scan|activity)|pen(?:etration)? ?test|red team|vulnerability scan(?:ner)?|scheduled (?:task|backup|scan)|backup job|qualys|nessus|tenable|rapid7|sccm|intune|health ?check|phishing simulation)\b/i;
const VPN_PATTERN = /\b(vpn|anyconnect|globalprotect|zscaler|forticlient|corporate egress)\b/i;

/** The entities worth a history: principals named by the most alerts of the case. */
function focusEntities(alerts: readonly AlertView[]): { type: string; value: string; alerts: number }[] {
  const counts = new Map<string, { type: string; value: string; alerts: number }>();
  for (const alert of alerts) {
    for (const e of alert.entities) {
      if (!PRINCIPAL_TYPES.includes(e.type)) continue;
      const key = `${e.type}:${e.value.toLowerCase()}`;
      const entry = counts.get(key) ?? { type: e.type, value: e.value, alerts: 0 };
      entry.alerts += 1;
      counts.set(key, entry);
    }
  }
  return [...counts.values()].sort(
    (a, b) => b.alerts - a.alerts || PRINCIPAL_TYPES.indexOf(a.type) - PRINCIPAL_TYPES.indexOf(b.type) || a.value.localeCompare(b.value),
  );
}

// ---------------------------------------------------------------------------------------------
// Planning: which tools next.

function plan(k: Knowledge): { content: string; calls: Omit<ToolCall, 'id'>[] } | null {
  if (!k.called.has('get_case') || !k.called.has('get_case_alerts')) {
    return {
      content: 'Reading the case and its alerts first.',
      calls: [
        ...(k.called.has('get_case') ? [] : [{ name: 'get_case', arguments: {} }]),
        ...(k.called.has('get_case_alerts') ? [] : [{ name: 'get_case_alerts', arguments: {} }]),
      ],
    };
  }
  const alerts = k.alerts ?? [];
  if (alerts.length === 0) return null;

  const calls: Omit<ToolCall, 'id'>[] = [];
  const reasons: string[] = [];
  const techniques = [...new Set(alerts.flatMap((a) => a.techniques))].sort();
  if (techniques.length > 0 && !k.called.has('technique_details')) {
    calls.push({ name: 'technique_details', arguments: { technique_ids: techniques.slice(0, 50) } });
    reasons.push(`${techniques.length} ATT&CK technique(s) to weigh`);
  }
  const hasEntities = alerts.some((a) => a.entities.length > 0);
  if (hasEntities && !k.called.has('indicators_seen')) {
    calls.push({ name: 'indicators_seen', arguments: {} });
    reasons.push('how common its entities are across the tenant');
  }
  if (hasEntities && !k.called.has('related_cases')) {
    calls.push({ name: 'related_cases', arguments: {} });
    reasons.push('other cases sharing its alerts or entities');
  }
  const rawWanted = alerts.filter((a) => (SEVERITY_RANK[a.severity] ?? 0) >= 3 || (a.rule !== null && INTERESTING_RULES.has(a.rule)));
  if (rawWanted.length > 0 && !k.called.has('get_alert_raw')) {
    calls.push({ name: 'get_alert_raw', arguments: { alert_ids: rawWanted.slice(0, 20).map((a) => a.id) } });
    reasons.push(`the raw events of ${rawWanted.length} high-severity or sign-in alert(s)`);
  }
  if (calls.length > 0) return { content: `The case has ${alerts.length} alert(s). Looking up ${reasons.join('; ')}.`, calls };

  // Histories only for principals seen outside this case: inside it, the alerts are known.
  const seenOutside = new Set((k.indicators ?? []).filter((i) => i.alerts_outside_case > 0).map((i) => i.value.toLowerCase()));
  const wanted = focusEntities(alerts)
    .filter((e) => seenOutside.has(e.value.toLowerCase()) && !k.called.has(`history:${e.type}:${e.value}`))
    .slice(0, 3);
  if (wanted.length > 0) {
    return {
      content: `${wanted.map((e) => `${e.type} ${e.value}`).join(', ')} also appear(s) in other alerts; reading their history.`,
      calls: wanted.map((e) => ({ name: 'entity_alert_history', arguments: { type: e.type, value: e.value } })),
    };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Assessment: the verdict from the evidence.

interface Signal {
  side: 'malicious' | 'benign' | 'false_positive';
  points: number;
  text: string;
  evidence: string[];
}

interface Conclusion {
  verdict: 'true_positive' | 'false_positive' | 'benign' | 'needs_more_info';
  confidence: number;
  summary: string;
  recommended_actions: string[];
  evidence_ids: string[];
}

const listed = (items: readonly string[], max = 3) => (items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`);
const round2 = (n: number) => Math.round(n * 100) / 100;
const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n));

function signals(k: Knowledge, alerts: readonly AlertView[]): Signal[] {
  const out: Signal[] = [];
  const alertIds = (list: readonly AlertView[]) => list.map((a) => `alert:${a.id}`);
  const byTechnique = (id: string) => alerts.filter((a) => a.techniques.includes(id));
  const techniques = [...new Set(alerts.flatMap((a) => a.techniques))].sort();
  const info = (id: string) => k.techniques.get(id) ?? (k.called.has('technique_details') ? undefined : techniqueInfo(id));

  // Analysts already called every alert a false positive.
  if (alerts.every((a) => a.status === 'false_positive')) {
    out.push({ side: 'false_positive', points: 5, text: `analysts marked all ${alerts.length} alert(s) false_positive`, evidence: alertIds(alerts) });
  }

  // Techniques that are rarely anything but malicious.
  const severe = techniques.filter((id) => info(id)?.weight === 3);
  if (severe.length > 0) {
    out.push({
      side: 'malicious',
      points: 3,
      text: `high-impact technique(s) ${listed(severe.map((id) => `${id} ${info(id)!.name}`))}`,
      evidence: [...severe.map((id) => `technique:${id}`), ...alertIds(severe.flatMap(byTechnique))],
    });
  }
  // Combinations that make a story.
  const tactics = new Set(techniques.flatMap((id) => (info(id) ? [info(id)!.tactic] : [])));
  const tacticEvidence = techniques.filter((id) => info(id)).map((id) => `technique:${id}`);
  if (tactics.has('credential_access') && tactics.has('lateral_movement')) {
    out.push({ side: 'malicious', points: 2, text: 'credential access followed by lateral movement', evidence: tacticEvidence });
  }
  const powershell = techniques.some((id) => id.startsWith('T1059'));
  const staging = techniques.filter((id) => ['T1105', 'T1027', 'T1140'].includes(id));
  if (powershell && staging.length > 0) {
    out.push({ side: 'malicious', points: 2, text: `script execution with ${listed(staging.map((id) => info(id)?.name ?? id))}`, evidence: [...staging, ...techniques.filter((id) => id.startsWith('T1059'))].map((id) => `technique:${id}`) });
  }
  const chain = [...tactics].filter((t) => t !== 'discovery' && t !== 'reconnaissance');
  if (chain.length >= 3) {
    out.push({ side: 'malicious', points: 2, text: `activity across ${chain.length} tactics (${[...chain].sort().join(', ')})`, evidence: tacticEvidence });
  }
  const maxWeight = Math.max(0, ...techniques.map((id) => info(id)?.weight ?? 1));

  // Severity.
  const maxSeverity = Math.max(...alerts.map((a) => SEVERITY_RANK[a.severity] ?? 0));
  const top = alerts.filter((a) => (SEVERITY_RANK[a.severity] ?? 0) === maxSeverity);
  if (maxSeverity >= 3 && !alerts.every((a) => a.status === 'false_positive')) {
    out.push({ side: 'malicious', points: maxSeverity - 2, text: `${top.length} ${maxSeverity === 4 ? 'critical' : 'high'}-severity alert(s)`, evidence: alertIds(top) });
  }
  if (maxSeverity <= 1 && maxWeight <= 1) {
    out.push({ side: 'benign', points: 2, text: 'only low-severity alerts with techniques that are common in normal use', evidence: alertIds(alerts) });
  }
  const open = alerts.filter((a) => a.status !== 'false_positive' && (SEVERITY_RANK[a.severity] ?? 0) >= 2);
  if (open.length >= 5) out.push({ side: 'malicious', points: 1, text: `${open.length} correlated alerts of medium severity or more`, evidence: alertIds(open) });

  // Known-benign patterns, in what the alerts say and in their raw events.
  for (const alert of alerts) {
    const text = `${alert.title} ${alert.description} ${alert.tags.join(' ')}`;
    const rawText = k.raw.has(alert.id) ? JSON.stringify(k.raw.get(alert.id)) : '';
    const match = BENIGN_PATTERN.exec(text) ?? BENIGN_PATTERN.exec(rawText);
    if (match) {
      out.push({
        side: 'benign',
        points: 3,
        text: `"${alert.title}" matches a known benign pattern (${match[0].toLowerCase()})`,
        evidence: [`alert:${alert.id}`, ...(k.raw.has(alert.id) ? [`raw:${alert.id}`] : [])],
      });
    }
  }

  // Impossible travel: malicious unless the user's earlier ones were false positives, or a VPN explains it.
  for (const alert of alerts.filter((a) => a.rule === 'impossible_travel' || /impossible travel/i.test(a.title))) {
    const users = alert.entities.filter((e) => e.type === 'user' || e.type === 'account');
    const history = users.map((u) => k.histories.get(`${u.type}:${u.value}`)).find((h) => h !== undefined);
    const earlierFalse = history ? history.recent_outside_case.filter((r) => r.rule === alert.rule && r.status === 'false_positive').length : 0;
    const rawText = k.raw.has(alert.id) ? JSON.stringify(k.raw.get(alert.id)) : '';
    const vpn = VPN_PATTERN.exec(rawText);
    if (earlierFalse >= 2 && history) {
      out.push({ side: 'false_positive', points: 3, text: `${earlierFalse} earlier impossible-travel alerts for ${history.entity.value} were false positives`, evidence: [`alert:${alert.id}`, `history:${history.entity.type}:${history.entity.value}`] });
    } else if (vpn) {
      out.push({ side: 'benign', points: 2, text: `the sign-ins of "${alert.title}" went through ${vpn[0]}`, evidence: [`alert:${alert.id}`, `raw:${alert.id}`] });
    } else {
      out.push({ side: 'malicious', points: 2, text: `impossible travel with no benign explanation in the history${users[0] ? ` of ${users[0].value}` : ''}`, evidence: [`alert:${alert.id}`, ...(k.raw.has(alert.id) ? [`raw:${alert.id}`] : [])] });
    }
  }
  for (const alert of alerts.filter((a) => a.rule === 'brute_force_success')) {
    out.push({ side: 'malicious', points: 2, text: `a successful sign-in right after a brute-force burst ("${alert.title}")`, evidence: [`alert:${alert.id}`] });
  }

  // Repeated alerts for an entity, and how the earlier ones ended.
  for (const history of k.histories.values()) {
    const statuses = history.outside_case_by_status;
    const earlier = history.alerts_outside_case;
    const falsePositives = statuses.false_positive ?? 0;
    const resolved = statuses.resolved ?? 0;
    const ref = `history:${history.entity.type}:${history.entity.value}`;
    if (earlier >= 3 && falsePositives / earlier >= 0.6) {
      out.push({ side: 'false_positive', points: 3, text: `${falsePositives} of ${earlier} earlier alerts naming ${history.entity.value} were false positives`, evidence: [ref] });
    } else if (resolved >= 2) {
      out.push({ side: 'malicious', points: 1, text: `${history.entity.value} had ${resolved} earlier alerts resolved as real`, evidence: [ref] });
    }
    const openEarlier = (statuses.new ?? 0) + (statuses.acknowledged ?? 0) + (statuses.in_progress ?? 0);
    if (openEarlier >= 3) out.push({ side: 'malicious', points: 1, text: `${history.entity.value} keeps raising alerts (${openEarlier} still open elsewhere)`, evidence: [ref] });
  }

  // Noisy indicators: everywhere, from several sources, mostly false positives.
  for (const indicator of k.indicators ?? []) {
    if (indicator.alerts_outside_case >= 25 && indicator.sources.length >= 3 && indicator.false_positive_alerts * 2 >= indicator.alerts) {
      out.push({ side: 'false_positive', points: 1, text: `${indicator.value} is a noisy indicator (${indicator.alerts} alerts, mostly false positives)`, evidence: [`indicator:${indicator.type}:${indicator.value}`] });
    }
  }

  // Related cases and how their investigations ended.
  for (const related of k.related ?? []) {
    const ref = `case:${related.id}`;
    if (related.latest_verdict === 'true_positive') out.push({ side: 'malicious', points: 2, text: `related case "${related.title}" was concluded a true positive`, evidence: [ref] });
    else if (related.latest_verdict === 'false_positive') out.push({ side: 'false_positive', points: 2, text: `related case "${related.title}" was concluded a false positive`, evidence: [ref] });
    else if (related.latest_verdict === 'benign') out.push({ side: 'benign', points: 2, text: `related case "${related.title}" was concluded benign`, evidence: [ref] });
  }
  const openRelated = (k.related ?? []).filter((r) => !['resolved', 'closed'].includes(r.status) && r.latest_verdict === null);
  if (openRelated.length >= 2) out.push({ side: 'malicious', points: 1, text: `${openRelated.length} other open cases share its entities`, evidence: openRelated.map((r) => `case:${r.id}`) });
  return out;
}

const VERDICT_TEXT: Record<Conclusion['verdict'], string> = {
  true_positive: 'True positive',
  false_positive: 'False positive',
  benign: 'Benign',
  needs_more_info: 'Undetermined',
};

function entitiesOf(alerts: readonly AlertView[], types: string[]): string[] {
  return [...new Set(alerts.flatMap((a) => a.entities.filter((e) => types.includes(e.type)).map((e) => e.value)))].sort();
}

function assess(k: Knowledge): Conclusion {
  const alerts = k.alerts ?? [];
  const caseRef = k.caseInfo ? [`case:${k.caseInfo.id}`] : [];
  const title = k.caseInfo ? `"${k.caseInfo.title}"` : 'this case';
  if (alerts.length === 0) {
    return {
      verdict: 'needs_more_info',
      confidence: 0.3,
      summary: `Undetermined for ${title}: it has no alerts to assess.`,
      recommended_actions: ['Link the alerts this case is about, then investigate again'],
      evidence_ids: caseRef,
    };
  }
  const found = signals(k, alerts);
  const sum = (side: Signal['side']) => found.filter((s) => s.side === side).reduce((n, s) => n + s.points, 0);
  const malicious = sum('malicious');
  const fp = sum('false_positive');
  const benign = sum('benign');
  const innocent = fp + benign;

  let verdict: Conclusion['verdict'];
  let confidence: number;
  if (malicious >= 4 && malicious >= innocent + 2) {
    verdict = 'true_positive';
    confidence = clamp(0.55 + 0.06 * (malicious - innocent), 0.55, 0.97);
  } else if (innocent >= 3 && innocent >= malicious + 2) {
    verdict = fp >= benign ? 'false_positive' : 'benign';
    confidence = clamp(0.55 + 0.06 * (innocent - malicious), 0.55, 0.95);
  } else {
    verdict = 'needs_more_info';
    confidence = clamp(0.35 + 0.03 * Math.abs(malicious - innocent), 0.3, 0.5);
  }
  const side = verdict === 'true_positive' ? ['malicious'] : verdict === 'needs_more_info' ? ['malicious', 'benign', 'false_positive'] : ['benign', 'false_positive'];
  const reasons = found.filter((s) => side.includes(s.side)).sort((a, b) => b.points - a.points);
  const against = found.filter((s) => !side.includes(s.side)).sort((a, b) => b.points - a.points);
  const summary =
    `${VERDICT_TEXT[verdict]} for ${title} (${alerts.length} alert(s)): ` +
    (reasons.length > 0 ? reasons.slice(0, 5).map((s) => s.text).join('; ') : 'nothing the tools showed points either way') +
    (verdict !== 'needs_more_info' && against.length > 0 ? `. Weighed against: ${against.slice(0, 2).map((s) => s.text).join('; ')}` : '') +
    `. Score: ${malicious} malicious, ${fp} false positive, ${benign} benign.`;

  const users = entitiesOf(alerts, ['user', 'account']);
  const hosts = entitiesOf(alerts, ['host']);
  const remote = entitiesOf(alerts, ['ip', 'domain', 'url']);
  const techniques = new Set(alerts.flatMap((a) => a.techniques));
  const tactics = new Set([...techniques].flatMap((id) => (techniqueInfo(id) ? [techniqueInfo(id)!.tactic] : [])));
  const actions: string[] = [];
  if (verdict === 'true_positive') {
    if (techniques.has('T1490') && hosts.length) actions.push(`Isolate ${listed(hosts)} now and check that backups are intact`);
    else if ((tactics.has('lateral_movement') || tactics.has('execution')) && hosts.length) actions.push(`Isolate ${listed(hosts)}`);
    if (tactics.has('credential_access') && users.length) actions.push(`Reset the credentials of ${listed(users)} and hunt for their use elsewhere`);
    if (alerts.some((a) => a.rule === 'impossible_travel') && users.length) actions.push(`Revoke the sessions of ${listed(users)} and require MFA re-registration`);
    if ((tactics.has('command_and_control') || techniques.has('T1105')) && remote.length) actions.push(`Block ${listed(remote)} at the perimeter`);
    actions.push('Move the case to containment and keep the evidence cited here');
  } else if (verdict === 'false_positive') {
    const rules = [...new Set(alerts.flatMap((a) => (a.rule ? [a.rule] : [a.source])))].sort();
    actions.push('Close the case as a false positive');
    actions.push(`Tune ${listed(rules)} so that ${listed([...users, ...hosts]) || 'these entities'} stop raising it`);
  } else if (verdict === 'benign') {
    actions.push('Close the case as benign');
    actions.push('Record the authorised activity so that it is recognised next time');
  } else {
    if (users.length || hosts.length) actions.push(`Ask the owners of ${listed([...users, ...hosts])} whether they expected this activity`);
    actions.push('Collect more telemetry (process, network and sign-in events) around the alerts and investigate again');
  }
  const cited = [...new Set([...caseRef, ...reasons.flatMap((s) => s.evidence), ...against.slice(0, 2).flatMap((s) => s.evidence)])].filter((id) => k.evidence.has(id));
  return { verdict, confidence: round2(confidence), summary: summary.slice(0, 4000), recommended_actions: actions.slice(0, 20), evidence_ids: cited };
}

// ---------------------------------------------------------------------------------------------

function respond(request: ModelRequest): ModelTurn {
  const k = read(request.messages);
  const turn = k.turns + 1;
  const next = k.refusals > 0 ? null : plan(k);
  const calls: ToolCall[] = next
    ? next.calls.map((call, i) => ({ id: `call_${turn}_${i + 1}`, ...call }))
    : [{ id: `call_${turn}_1`, name: CONCLUDE_TOOL, arguments: assess(k) as unknown as Record<string, unknown> }];
  const content = next ? next.content : 'Concluding from what the tools showed.';
  const input = request.messages.reduce((n, m) => n + m.content.length + ('toolCalls' in m ? JSON.stringify(m.toolCalls).length : 0), 0) + JSON.stringify(request.tools).length;
  return {
    content,
    toolCalls: calls,
    usage: { inputTokens: Math.ceil(input / 4), outputTokens: estimateTokens(content + JSON.stringify(calls)) },
    stopReason: 'tool_calls',
  };
}

export function createBuiltinReasoner(): ModelProvider {
  return {
    name: 'builtin',
    model: BUILTIN_MODEL,
    async complete(request) {
      if (request.signal?.aborted) throw request.signal.reason instanceof Error ? request.signal.reason : new Error('aborted');
      return respond(request);
    },
  };
}
