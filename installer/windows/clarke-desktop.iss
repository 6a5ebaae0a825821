; Inno Setup 6 script for Clarke Desktop (Windows 10/11 x64), per-machine install.
; Build on Windows after installer\windows\build.ps1 has produced dist\clarke-desktop\:
;     iscc /DAppVersion=0.1.0 installer\windows\clarke-desktop.iss
; Silent install (IT, SCCM/Intune), as administrator:
;     ClarkeDesktop-0.1.0-Setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /LOG="C:\Windows\Temp\clarke-install.log"
; Optional, install a model pack in the same step (verified by sha256 before anything is placed):
;     ClarkeDesktop-0.1.0-Setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /MODELPACK="D:\clarke-models"
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
PrivilegesRequiredOverridesAllowed=
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0.17763
OutputDir=..\..\dist
OutputBaseFilename=ClarkeDesktop-{#AppVersion}-Setup
Compression=lzma2/fast
SolidCompression=no
WizardStyle=modern
UninstallDisplayIcon={app}\clarke-desktop.exe
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
Name: "{commonprograms}\Clarke Desktop"; Filename: "{app}\clarke-desktop.exe"; Parameters: ""
Name: "{commondesktop}\Clarke Desktop"; Filename: "{app}\clarke-desktop.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; Flags: unchecked

[Run]
; No network: the only post-install action is installing a model pack the administrator named.
Filename: "{app}\clarke-desktop.exe"; Parameters: "models install ""{param:MODELPACK}"" --scope machine"; \
  StatusMsg: "Verifying and installing the model pack..."; Flags: runhidden waituntilterminated; \
  Check: ModelPackGiven
Filename: "{app}\clarke-desktop.exe"; Description: "Start Clarke Desktop"; \
  Flags: nowait postinstall skipifsilent

[Code]
function ModelPackGiven(): Boolean;
begin
  Result := ExpandConstant('{param:MODELPACK}') <> '';
end;
