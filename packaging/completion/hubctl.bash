# bash completion for hubctl
_hubctl() {
	local cur prev words cword
	_init_completion || return

	case $prev in
	-c | --config)
		_filedir '@(yaml|yml)'
		return
		;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W '--config --json --help --version' -- "$cur"))
		return
	fi

	local i
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		status | queues | devices | sync) return ;;
		esac
	done
	COMPREPLY=($(compgen -W 'status queues devices sync' -- "$cur"))
} && complete -F _hubctl hubctl
