; Inno Setup 6 script: a Windows installer for the PyInstaller bundle in dist\finetune-gui\.
;
;   pyinstaller --noconfirm --distpath dist --workpath build\pyinstaller packaging\finetune_gui.spec
;   iscc /DAppVersion=0.1.0 packaging\windows\finetune-gui.iss
;
; Output: dist\finetune-gui-<version>-windows-x64-setup.exe. Installs per user (no admin) or for all users,
; with Start-menu entries for the app and for its self-test, an optional desktop icon, and an uninstaller.
; Run from the repository root or anywhere: paths are relative to this file.
; This script was written for Inno Setup 6.2+ and is built by .github/workflows/installers.yml; it has not been
; compiled on the machine it was written on (no Windows there) - see packaging\README.md.

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z finetune-gui.iss (it is finetune_gui.__version__)
#endif
#define AppName "Finetune GUI"
#define AppExe "finetune-gui.exe"
#define CliExe "finetune-gui-cli.exe"
#define Root AddBackslash(SourcePath) + "..\.."

[Setup]
AppId={{6F1B1E9C-3C52-4C8E-9B43-6E0F3C1B7A21}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=finetune-gui developers
DefaultDirName={autopf}\finetune-gui
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; per-user install by default (no admin prompt); the user may choose all users in the dialog
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir={#Root}\dist
OutputBaseFilename=finetune-gui-{#AppVersion}-windows-x64-setup
SetupIconFile={#Root}\resources\icon.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion}
; torch's DLLs are large: LZMA2 with a big dictionary shrinks them well; solid compression keeps it one stream
Compression=lzma2/ultra64
SolidCompression=yes
LZMAUseSeparateProcess=yes
; PyPI's Windows torch is a CPU build, so the setup stays well under the size one setup .exe can hold; a bundle
; with CUDA libraries would need DiskSpanning=yes (setup.exe plus setup-N.bin files), see packaging\README.md
WizardStyle=modern
ChangesAssociations=no
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; the whole one-folder bundle: both executables and _internal\ (Python, torch, Qt, presets, demo data)
Source: "{#Root}\dist\finetune-gui\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; an upgrade must not keep libraries of the old version next to the new ones
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"
Name: "{group}\{#AppName} self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\{#CliExe}"" --self-test"; \
    WorkingDir: "{userdocs}"; IconFilename: "{app}\{#AppExe}"
Name: "{group}\{cm:UninstallProgram,{#AppName}}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
