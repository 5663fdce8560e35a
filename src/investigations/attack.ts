/**
 * The ATT&CK techniques the product's detections name (src/ingest/ocsf/rules.ts and the
 * sources it ingests), with what the investigator needs to weigh them: the tactic, and how
 * much a sighting alone says (`weight`: 1 often benign on its own, 2 suspicious, 3 rarely
 * anything but malicious). A small static catalogue, not the whole matrix.
 */
export interface TechniqueInfo {
  id: string;
  name: string;
  tactic: 'reconnaissance' | 'initial_access' | 'execution' | 'persistence' | 'defense_evasion' | 'credential_access' | 'discovery' | 'lateral_movement' | 'command_and_control' | 'impact';
  weight: 1 | 2 | 3;
  description: string;
  /** What an analyst checks before calling it benign. */
  benign_when: string;
}

const T = (id: string, name: string, tactic: TechniqueInfo['tactic'], weight: TechniqueInfo['weight'], description: string, benign_when: string): TechniqueInfo => ({
  id,
  name,
  tactic,
  weight,
  description,
  benign_when,
});

export const TECHNIQUES: ReadonlyMap<string, TechniqueInfo> = new Map(
  [
    T('T1003', 'OS Credential Dumping', 'credential_access', 3, 'Obtaining account credentials from the operating system.', 'an authorised security test'),
    T('T1003.001', 'OS Credential Dumping: LSASS Memory', 'credential_access', 3, 'Reading credentials from the memory of lsass.exe (mimikatz, procdump, comsvcs minidump).', 'an authorised security test'),
    T('T1003.002', 'OS Credential Dumping: Security Account Manager', 'credential_access', 3, 'Extracting password hashes from the SAM database.', 'an authorised security test'),
    T('T1003.006', 'OS Credential Dumping: DCSync', 'credential_access', 3, 'Impersonating a domain controller to pull password data by replication.', 'the account is a domain controller'),
    T('T1021', 'Remote Services', 'lateral_movement', 2, 'Using valid accounts to log on to remote services.', 'administrators working from their admin hosts'),
    T('T1021.001', 'Remote Services: Remote Desktop Protocol', 'lateral_movement', 2, 'Moving between hosts over RDP.', 'helpdesk or administrator sessions'),
    T('T1021.002', 'Remote Services: SMB/Windows Admin Shares', 'lateral_movement', 2, 'Using admin shares (C$, ADMIN$) to reach other hosts.', 'software deployment tools'),
    T('T1021.004', 'Remote Services: SSH', 'lateral_movement', 1, 'Moving between hosts over SSH.', 'routine administration'),
    T('T1021.006', 'Remote Services: Windows Remote Management', 'lateral_movement', 2, 'Running commands on other hosts through WinRM.', 'configuration management'),
    T('T1027', 'Obfuscated Files or Information', 'defense_evasion', 2, 'Encoding or encrypting commands and payloads to hide them.', 'rarely benign in command lines'),
    T('T1033', 'System Owner/User Discovery', 'discovery', 1, 'Finding out who uses a system (whoami).', 'users and scripts checking their identity'),
    T('T1046', 'Network Service Discovery', 'discovery', 1, 'Scanning for listening services.', 'an authorised vulnerability scanner'),
    T('T1047', 'Windows Management Instrumentation', 'execution', 2, 'Starting processes on hosts through WMI.', 'management agents'),
    T('T1059', 'Command and Scripting Interpreter', 'execution', 1, 'Running commands through an interpreter.', 'administration scripts'),
    T('T1059.001', 'Command and Scripting Interpreter: PowerShell', 'execution', 2, 'Running PowerShell, often encoded or downloading code.', 'signed administration scripts'),
    T('T1071.004', 'Application Layer Protocol: DNS', 'command_and_control', 2, 'Command and control or exfiltration over DNS.', 'security products doing DNS lookups in bulk'),
    T('T1078', 'Valid Accounts', 'initial_access', 2, 'Signing in with stolen but valid credentials.', 'the user really travelled or used a VPN'),
    T('T1087.001', 'Account Discovery: Local Account', 'discovery', 1, 'Listing local accounts.', 'administration'),
    T('T1087.002', 'Account Discovery: Domain Account', 'discovery', 1, 'Listing domain accounts and groups.', 'administration'),
    T('T1105', 'Ingress Tool Transfer', 'command_and_control', 2, 'Downloading tools or payloads onto a host.', 'software updates'),
    T('T1110', 'Brute Force', 'credential_access', 2, 'Guessing passwords.', 'a user who forgot their password'),
    T('T1110.003', 'Brute Force: Password Spraying', 'credential_access', 2, 'Trying a few passwords against many accounts.', 'a misconfigured service account'),
    T('T1140', 'Deobfuscate/Decode Files or Information', 'defense_evasion', 2, 'Decoding payloads (certutil -decode, base64).', 'rare in normal use'),
    T('T1482', 'Domain Trust Discovery', 'discovery', 2, 'Enumerating domain trusts (nltest).', 'domain administrators'),
    T('T1490', 'Inhibit System Recovery', 'impact', 3, 'Deleting shadow copies and backups, typical right before ransomware encrypts.', 'almost never benign'),
    T('T1543.003', 'Create or Modify System Process: Windows Service', 'persistence', 2, 'Installing a service, locally or on another host.', 'software installation'),
    T('T1566', 'Phishing', 'initial_access', 2, 'Sending malicious e-mail.', 'a phishing simulation'),
    T('T1569.002', 'System Services: Service Execution', 'execution', 2, 'Running code through a service (PsExec).', 'administrators using PsExec'),
    T('T1570', 'Lateral Tool Transfer', 'lateral_movement', 2, 'Copying tools between hosts.', 'software deployment'),
    T('T1571', 'Non-Standard Port', 'command_and_control', 1, 'Talking to a well-known protocol on an unusual port.', 'internal services on custom ports'),
  ].map((t) => [t.id, t] as const),
);

/** The technique, or its parent's entry for an unknown sub-technique. */
export function techniqueInfo(id: string): TechniqueInfo | undefined {
  return TECHNIQUES.get(id) ?? TECHNIQUES.get(id.split('.')[0]!);
}
