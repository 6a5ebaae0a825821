; Inno Setup 6.3+ script for Clarke Desktop (Windows 10/11 x64), per-machine install.
; Build on Windows after installer\windows\build.ps1 has produced dist\clarke-desktop\:
;     iscc /DAppVersion=0.1.0 installer\windows\clarke-desktop.iss
; Silent install (IT, SCCM/Intune), as administrator:
;     ClarkeDesktop-0.1.0-Setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /LOG="C:\Windows\Temp\clarke-install.log"
; Optional, trust IT's model-pack signing key and install a signed model pack in the same step (the
; signature and every file's sha256 are verified before anything is placed):
;     ClarkeDesktop-0.1.0-Setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /MODELKEY="D:\models.key.pub" /MODELPACK="D:\clarke-models"
; Silent uninstall: "C:\Program Files\Clarke Desktop\unins000.exe" /VERYSILENT /SUPPRESSMSGBOXES /NORESTART
; Uninstall keeps patient data (%LOCALAPPDATA%\Clarke\ClarkeDesktop) and model packs
; (%PROGRAMDATA%\Clarke\ClarkeDesktop\models): see docs\it-guide.md.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\clarke-desktop"
#endif

[Setup]
AppId={{6C1E3A52-8B1D-4F7E-9C1B-2E4C0D7A9F31}
AppName=Clarke Desktop
AppVersion={#AppVersion}
AppPublisher=Clarke Desktop
DefaultDirName={autopf}\Clarke Desktop
DefaultGroupName=Clarke Desktop
DisableProgramGroupPage=yes
; Per-machine: Program Files, all users' Start menu, HKLM uninstall entry. Needs admin to install,
; never at run time.
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0.17763
OutputDir=..\..\dist
OutputBaseFilename=ClarkeDesktop-{#AppVersion}-Setup
Compression=lzma2/fast
SolidCompression=no
WizardStyle=modern
UninstallDisplayIcon={app}\clarke-desktop-gui.exe
CloseApplications=yes
RestartApplications=no
; An upgrade installs over the previous version in place; user data lives elsewhere.
UsePreviousAppDir=yes

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; Remove the previous version's bundled libraries so an upgrade never mixes two builds.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
; The windowed twin (no console window); clarke-desktop.exe is the command line for IT.
Name: "{commonprograms}\Clarke Desktop"; Filename: "{app}\clarke-desktop-gui.exe"
Name: "{commondesktop}\Clarke Desktop"; Filename: "{app}\clarke-desktop-gui.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked

[Run]
; No network. The model pack (if /MODELPACK= was given) is installed in [Code] below, where its exit
; code can be checked and logged.
Filename: "{app}\clarke-desktop-gui.exe"; Description: "Start Clarke Desktop"; \
  Flags: nowait postinstall skipifsilent

[Code]
// IT's machine folder (trusted model-pack keys, policy, per-machine models) must be writable by
// administrators only: ProgramData's inherited ACL lets every user create files in any sub-folder,
// so inheritance is cut and Administrators/SYSTEM get full control, Users read and execute.
procedure LockDownMachineFolder();
var
  Dir: String;
  ResultCode: Integer;
begin
  Dir := ExpandConstant('{commonappdata}\Clarke\ClarkeDesktop');
  ForceDirectories(Dir + '\trusted_keys');
  if not Exec(ExpandConstant('{sys}\icacls.exe'),
              '"' + Dir + '" /inheritance:r /grant:r *S-1-5-32-544:(OI)(CI)F *S-1-5-18:(OI)(CI)F '
              + '*S-1-5-32-545:(OI)(CI)RX /T', '', SW_HIDE, ewWaitUntilTerminated, ResultCode)
     or (ResultCode <> 0) then
    Log(Format('WARNING: could not restrict %s to administrators (icacls exit code %d); model packs '
               + 'and their trusted keys there could be changed by other users', [Dir, ResultCode]))
  else
    Log('Restricted ' + Dir + ' to administrators (users read only).');
end;

procedure CurStepChanged(CurStep: TSetupStep);
var
  Pack: String;
  Key: String;
  ResultCode: Integer;
begin
  if CurStep <> ssPostInstall then Exit;
  LockDownMachineFolder();
  Key := ExpandConstant('{param:MODELKEY}');
  if Key <> '' then
  begin
    if not Exec(ExpandConstant('{app}\clarke-desktop.exe'), 'models trust "' + Key + '"', '', SW_HIDE,
                ewWaitUntilTerminated, ResultCode) or (ResultCode <> 0) then
      Log(Format('MODEL SIGNING KEY NOT TRUSTED (exit code %d): run "clarke-desktop models trust %s" '
                 + 'for the reason', [ResultCode, Key]))
    else
      Log('Model-pack signing key ' + Key + ' trusted.');
  end;
  Pack := ExpandConstant('{param:MODELPACK}');
  if Pack = '' then Exit;
  Log('Installing model pack ' + Pack + ' (its signature and every file''s sha256 are verified before it is placed)');
  if not Exec(ExpandConstant('{app}\clarke-desktop.exe'),
              'models install "' + Pack + '" --scope machine', '', SW_HIDE,
              ewWaitUntilTerminated, ResultCode) or (ResultCode <> 0) then
  begin
    Log(Format('MODEL PACK NOT INSTALLED (exit code %d): run "clarke-desktop models install %s" '
               + 'for the reason; the application itself is installed.', [ResultCode, Pack]));
    SuppressibleMsgBox('The model pack at ' + Pack + ' was not installed (its signature or a file did '
      + 'not verify, or it could not be read). Run "clarke-desktop models install" on it to see why.',
      mbError, MB_OK, IDOK);
  end
  else
    Log('Model pack installed and verified.');
end;
