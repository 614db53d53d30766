package winres

// AgentInfo is the version resource of meshagent.exe for version.
func AgentInfo(version string) Info {
	return Info{
		Version:     version,
		ProductName: "MeshGo Agent",
		Description: "MeshGo remote management agent (MeshCentral compatible)",
		Company:     "MeshGo",
		Copyright:   "MeshGo authors",
		Internal:    "meshagent",
		Original:    "meshagent.exe",
	}
}

// Agent is the .syso of meshagent.exe: its version resource (id 1) and
// icon (group 1; 16, 32 and 48 pixel images, ids 1 to 3).
func Agent(version string) ([]byte, error) {
	vi, err := VersionInfo(AgentInfo(version))
	if err != nil {
		return nil, err
	}
	res := Icon(1, 1, []IconImage{AgentIcon(16), AgentIcon(32), AgentIcon(48)})
	res = append(res, Resource{Type: TypeVersion, ID: 1, Lang: LangEnUS, Data: vi})
	return Syso(res), nil
}
