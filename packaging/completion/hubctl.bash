# bash completion for hubctl
_hubctl() {
	local cur prev words cword
	_init_completion || return

	case $prev in
	-c | --config)
		_filedir '@(yaml|yml)'
		return
		;;
	deploy)
		_filedir '@(json)'
		return
		;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W '--config --json --help --version' -- "$cur"))
		return
	fi

	local i command=""
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		status | queues | devices | sync | routes | twins | modules | deployment | deploy | methods)
			command=${words[i]}
			break
			;;
		esac
	done
	case $command in
	"")
		COMPREPLY=($(compgen -W 'status queues devices sync routes twins modules deployment deploy methods' -- "$cur"))
		;;
	twins)
		[[ $prev == twins ]] && COMPREPLY=($(compgen -W 'show' -- "$cur"))
		;;
	methods)
		[[ $prev == methods ]] && COMPREPLY=($(compgen -W 'invoke' -- "$cur"))
		;;
	esac
} && complete -F _hubctl hubctl
